"""What plugin authors build on: in-memory datasets, the ``tf.data`` pipeline, storage.

* :mod:`nasframe.authoring.datasets` -- :class:`~nasframe.ArrayDataset`, a complete
  dataset handler over numpy arrays, and the seeded :func:`~nasframe.split_indices`;
* :mod:`nasframe.authoring.tf_data` -- :func:`~nasframe.authoring.tf_data.pipeline`, the
  default ``tf.data`` input pipeline of a handler (TensorFlow imported inside it);
* :mod:`nasframe.authoring.storage` -- the checks every file-backed experiment database
  makes (:func:`~nasframe.check_file_db_settings`) and :func:`open_database`;
* :mod:`nasframe.authoring.records_frame` -- records as typed pandas frames
  (``ExperimentDB.to_frame``, :data:`~nasframe.authoring.records_frame.FRAME_DTYPES`).

The names a plugin needs are in ``nasframe``'s public API (``nasframe.ArrayDataset``,
``nasframe.FileDBSettings``, ...). This package imports none of its modules, so
importing one of them costs only that module.
"""
