"""The core's configuration sections (``[run]``, ``[env]``, ``[ray]``, ...) and component keys.

:func:`core_schema` declares the sections the core itself reads on a
:class:`~nasframe.config.schema.ConfigSchema`; every plugin declares its own through the
``nasframe_add_config`` hook. :data:`COMPONENT_KEYS` names the keys that name a
component. The loader (:mod:`nasframe.config.loading`) starts every schema here.
"""

from __future__ import annotations

from pathlib import Path

from nasframe.config.schema import ConfigSchema

__all__ = ["COMPONENT_KEYS", "component_keys", "core_schema"]

#: The configuration keys that name a component, and the kind of component they name.
COMPONENT_KEYS: dict[tuple[str, str], str] = {
    ("env", "search_space"): "search_space",
    ("env", "state_encoder"): "state_encoder",
    ("env", "estimator"): "estimator",
    ("env", "dataset"): "dataset",
    ("env", "database"): "database",
    ("run", "agent"): "agent",
}


def component_keys(schema: ConfigSchema) -> dict[tuple[str, str], str]:
    """Every key that names a component, and the kind it names.

    The core's :data:`COMPONENT_KEYS` and the keys plugins declared with ``component=``.
    """
    keys = dict(COMPONENT_KEYS)
    for section in schema:
        for key in section.keys.values():
            if key.component is not None:
                keys[(section.name, key.name)] = key.component
    return keys


def core_schema(schema: ConfigSchema) -> ConfigSchema:
    """Declare the core's sections, ``[run]`` and ``[env]``, on ``schema``."""
    run = schema.section("run", "What to search with, for how long, and where results go.")
    run.add("agent", str, "random", "the search agent (nasframe plugins lists them)")
    run.add("steps", int, 200, "environment steps to run (0: use episodes)", min=0)
    run.add("episodes", int, 0, "episodes to run instead of steps (0: use steps)", min=0)
    run.add("seed", int, 0, "seed of the agent, the environment and the estimator", min=0)
    run.add("output", Path, Path("runs/search"), "output folder (database, logs, results)")
    run.add("workers", int, 1, "parallel evaluation workers (more than 1 uses Ray)", min=1)
    run.add(
        "ray_address",
        str,
        "",
        "address of an existing Ray cluster, or auto ('': $RAY_ADDRESS, else a new local one)",
    )
    run.add(
        "scheduler",
        str,
        "auto",
        "with workers > 1: async (ask/tell agents), lockstep, pipelined (on-policy RL "
        "learners: rewards pending until the rollout ends), or auto (async when the agent can)",
        choices=("auto", "async", "lockstep", "pipelined"),
    )
    run.add(
        "envs",
        int,
        0,
        "environments a lockstep search steps together (0: as many as workers)",
        min=0,
    )
    run.add("resume", bool, True, "resume the run in the output folder (false: start over)")
    run.add("verbosity", int, 1, "0 quiet, 1 progress bar and table, 2 every step", min=0, max=2)
    run.add("checkpoint_every", int, 50, "save the agent every this many steps (0: at end)", min=0)
    run.add("plots", bool, True, "write rewards.png and best_architecture.png (extra: plot)")
    run.add("tensorboard", bool, False, "write TensorBoard scalars to <output>/tensorboard")
    run.add("top", int, 10, "how many best architectures the table and summary list", min=1)
    run.add("meta_rl", bool, False, "add previous action, reward and step to observations")
    run.add("tasks", str, "", "task schedule, e.g. omniglot:8000,vgg_flower:7000 ('': none)")
    run.add(
        "play",
        str,
        "",
        "a saved agent to run without learning ('': learn; nasframe play sets it)",
    )
    env = schema.section("env", "The components of the environment and its reward.")
    env.add("search_space", str, "chained", "the search space")
    env.add("state_encoder", str, "onehot", "the state encoder")
    env.add("estimator", str, "keras", "the performance estimator")
    env.add("dataset", str, "digits", "the dataset handler")
    env.add("database", str, "csv", "the experiment database")
    env.add("max_steps", int, 10, "steps per episode before it is truncated", min=1)
    env.add(
        "reward", str, "accuracy", "reward: accuracy or blockqnn", choices=("accuracy", "blockqnn")
    )
    env.add(
        "evaluate",
        str,
        "every_step",
        "every_step (dense reward, NASGym) or episode_end (only an episode's last network)",
        choices=("every_step", "episode_end"),
    )
    env.add("mu", float, 0.5, "BlockQNN shaping weight of ln(FLOPs)", min=0)
    env.add("rho", float, 0.5, "BlockQNN shaping weight of ln(density)", min=0)
    env.add("sigma", float, 0.5, "reward factor of pointer moves (NASGym's σ)", min=0, max=1)
    env.add("invalid_reward", float, 0.0, "reward of an invalid architecture")
    env.add("retry_transient", bool, False, "retrain cached out_of_memory/timeout/error results")
    bench = schema.section(
        "bench", "NSC-Bench tables: what `nasframe bench build` trains (components: [env])."
    )
    bench.add("depth", int, 3, "deepest network of the table, in layers", min=0)
    bench.add("seeds", str, "0", "training seeds, comma-separated: every network once per seed")
    bench.add("repeat_seeds", str, "", "more seeds, comma-separated, for the best networks only")
    bench.add(
        "repeat_top",
        float,
        0.1,
        "fraction of networks (best first) the repeat seeds train",
        min=0,
        max=1,
    )
    bench.add(
        "repeat_pick",
        str,
        "top",
        "which networks the repeat seeds train: top (the best) or random (a seeded fraction)",
        choices=("top", "random"),
    )
    bench.add("output", Path, Path("runs/bench"), "the table folder")
    bench.add(
        "sample", int, 0, "networks to sample and train (0: every network, exhaustive)", min=0
    )
    bench.add(
        "sample_agents",
        str,
        "rea,ppo",
        "agents whose trajectories on the live estimator join a sample, comma-separated",
    )
    bench.add(
        "agent_share",
        float,
        0.25,
        "fraction of a sample from the agents' trajectories (the rest: random episodes)",
        min=0,
        max=1,
    )
    bench.add("sample_seed", int, 0, "seed of a sample's random episodes and agents", min=0)
    final = schema.section(
        "finalize",
        "Final training of a run's best networks: what `nasframe finalize RUN` trains.",
    )
    final.add("top_k", int, 3, "how many of the run's best networks to retrain", min=1)
    final.add("seeds", str, "0,1,2", "training seeds, comma-separated: mean and std over them")
    final.add("epochs", int, 0, "training epochs (0: the estimator's own setting)", min=0)
    final.add("builder", str, "", "network builder, e.g. blockqnn-v1 ('': the estimator's own)")
    final.add(
        "augmentation",
        str,
        "",
        "training augmentation, e.g. shift, where the estimator has it ('': its own)",
    )
    final.add(
        "settings",
        str,
        "",
        "more estimator settings for the final training, e.g. batch_size=64,patience=0",
    )
    final.add("output", Path, None, "the results folder (empty: <run>/final)", optional=True)
    # One section every file-backed database reads; the core declares it because the search
    # command places the file (an empty path means "in the output folder").
    ray = schema.section("ray", "Parallel evaluation on Ray (used when [run] workers > 1).")
    ray.add("num_cpus", float, 1.0, "CPUs each evaluation reserves on the cluster", min=0.01)
    ray.add("num_gpus", float, 0.0, "GPUs each evaluation reserves (0.5 shares one GPU)", min=0)
    ray.add("max_retries", int, 2, "retries of an evaluation whose worker died", min=0)
    ray.add("timeout", float, 0.0, "seconds before a busy worker is stopped (0: no limit)", min=0)
    ray.add(
        "keep_workers",
        bool,
        False,
        "on an existing cluster, leave idle workers running for the next search (and reuse them)",
    )
    database = schema.section(
        "database", "The experiment database: where evaluations are stored and cached."
    )
    database.add(
        "path",
        Path,
        None,
        "database file, .csv or .sqlite (empty: in the search's output folder; "
        "relative: to the current directory; run.json records it and the folder the "
        "search ran in, so finalize finds it from anywhere)",
        optional=True,
    )
    database.add(
        "lock_timeout",
        float,
        60.0,
        "seconds to wait for another process holding the database before giving up",
        min=0,
    )
    database.add(
        "fsync",
        bool,
        True,
        "fsync each record (off: a power cut may lose the last ones, a crash never does)",
    )
    return schema
