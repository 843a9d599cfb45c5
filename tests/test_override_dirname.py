"""``${hydra:job.override_dirname}`` in a run: the same for an experiment whatever runs it, and resumable.

What it holds for each job is compared with real Hydra in test_hydra_parity.py;
here, what this package adds: its own run settings typed on the command line
(``backend=``, ``out_path=``, ``repetitions=``, ...) are left out of it, as
Hydra leaves out the ``hydra.*`` overrides they stand for, and a resumed run
(``--resume``, or ``if_exists=resume`` with the first command) gives every
experiment the override_dirname, so the config hash, that it had.
"""
import json
import shutil

import pytest
import yaml

from experiment_runner.experiment import config_hash
from experiment_runner.expand import plan_sweep
from test_cli import PROG, cli, interrupted, jsonl, typed_in_a_shell, write_project  # noqa: F401  (cli: a fixture)
from test_hydra_node import composed

TAGGED = "pre: stages:pre\nfit: stages:fit\npost: stages:post\nverbose: false\nlr: 0.1\n" \
         "tag: run_${hydra:job.override_dirname}\n"
GROUPS = {"db/mysql.yaml": "driver: mysql\n", "db/postgresql.yaml": "driver: postgresql\n"}
TAGGED_WITH_DB = "defaults:\n  - db: mysql\n  - _self_\n" + TAGGED
SWEEPER_PARAMS = TAGGED + "hydra:\n  sweeper:\n    params:\n      +z: 5,6\n"


def tags_and_hashes(out_path):
    """Each recorded experiment's tag and config hash, by experiment id."""
    lines = jsonl(out_path / "experiments.jsonl")
    return {line["experiment_id"]: (line["config"]["tag"], line["hash"]) for line in lines}


def keep_first_result(out_path):
    """As a run stopped after its first experiment: the others are left to run. The line kept."""
    results = out_path / "results.jsonl"
    first = results.read_text().splitlines()[0]
    results.write_text(first + "\n")
    return first


def ran_only_the_rest(out_path, kept, count):
    """The results hold the line kept, first, and each other experiment once."""
    lines = (out_path / "results.jsonl").read_text().splitlines()
    return lines[0] == kept and sorted(json.loads(line)["experiment_id"] for line in lines) == list(range(count))


@pytest.mark.parametrize("config, overrides, tags", [
    pytest.param(TAGGED, ["lr=1,2,3"], ["run_lr=1", "run_lr=2", "run_lr=3"], id="value-sweep"),
    pytest.param(TAGGED_WITH_DB, ["db=mysql,postgresql", "lr=1,2", "+note=x"],
                 ["run_+note=x,db=mysql,lr=1", "run_+note=x,db=mysql,lr=2", "run_+note=x,db=postgresql,lr=1",
                  "run_+note=x,db=postgresql,lr=2"], id="group-and-value-sweep"),
    pytest.param(TAGGED_WITH_DB, ["db=glob(*)", "lr=1,2"],
                 ["run_db=mysql,lr=1", "run_db=mysql,lr=2", "run_db=postgresql,lr=1", "run_db=postgresql,lr=2"],
                 id="glob"),
    pytest.param(SWEEPER_PARAMS, ["-m", "lr=1,2"], ["run_+z=5,lr=1", "run_+z=5,lr=2", "run_+z=6,lr=1",
                                                    "run_+z=6,lr=2"], id="sweeper-params"),
    # sampled: the resume seeds the sampling again (seed=N), a run setting, as the first run's seed=4 is
    pytest.param(TAGGED, ["lr=1,2,3,4", "n_configs=3", "seed=4"], ["run_lr=1", "run_lr=2", "run_lr=4"],
                 id="sampled-with-a-seed-to-sample"),
    pytest.param(TAGGED + "seed: 7\n", ["lr=1,2,3,4", "n_configs=3"], ["run_lr=1", "run_lr=2", "run_lr=3"],
                 id="sampled-by-the-projects-seed"),
    pytest.param(TAGGED + "seed: 0\n", ["lr=1,2,3,4", "n_configs=3", "seed=4"],
                 ["run_lr=1,seed=4", "run_lr=2,seed=4", "run_lr=4,seed=4"], id="sampled-by-the-projects-seed-typed"),
])
def test_a_sweep_tagged_with_its_override_dirname_resumes_only_what_did_not_finish(cli, tmp_path, config, overrides,
                                                                                   tags):
    write_project(tmp_path, config, GROUPS)
    assert cli("out_path=out", *overrides)[0] == 0
    out = tmp_path / "out"
    first = tags_and_hashes(out)
    assert sorted(tag for tag, _ in first.values()) == tags
    kept = keep_first_result(out)
    code, _, err = cli("--resume", "out")
    assert code == 0, err
    assert ran_only_the_rest(out, kept, len(tags))
    assert tags_and_hashes(out) == first
    assert sorted(line["tag"] for line in jsonl(out / "results.jsonl")) == tags
    kept = keep_first_result(out)
    code, _, err = cli("out_path=out", *overrides, "if_exists=resume", "backend=multiprocessing", "verbose=true")
    assert code == 0, err
    assert f"{len(tags)} of {len(tags)} experiments finished (1 in earlier runs)" in err
    assert ran_only_the_rest(out, kept, len(tags))
    assert tags_and_hashes(out) == first


def test_a_resume_with_other_run_settings_and_the_sweep_typed_again_matches_each_experiment(cli, tmp_path):
    write_project(tmp_path, TAGGED, {})
    assert cli("out_path=out", "lr=1,2,3", "repetitions=1")[0] == 0
    out = tmp_path / "out"
    first = tags_and_hashes(out)
    for again in (["lr=1,2,3", "backend=multiprocessing", "timeout=60"], ["repetitions=1"], []):
        kept = keep_first_result(out)
        code, _, err = cli("--resume", "out", *again)
        assert code == 0, err
        assert ran_only_the_rest(out, kept, 3)
        assert tags_and_hashes(out) == first
    record = yaml.safe_load((out / "run.yaml").read_text())
    assert record["overrides"] == ["out_path=out", "lr=1,2,3", "repetitions=1", "backend=multiprocessing",
                                   "timeout=60"], "each override once, one typed again with its value as recorded"


def test_an_override_typed_again_with_resume_keeps_the_recorded_one_whatever_its_prefix(cli, tmp_path):
    write_project(tmp_path, TAGGED, {})
    assert cli("out_path=out", "lr=1,2", "+q=5")[0] == 0
    out = tmp_path / "out"
    first = tags_and_hashes(out)
    assert sorted(tag for tag, _ in first.values()) == ["run_+q=5,lr=1", "run_+q=5,lr=2"]
    for again in (["q=5"], ["+q=5", "lr=1,2"]):
        kept = keep_first_result(out)
        code, _, err = cli("--resume", "out", *again)
        assert code == 0, err
        assert ran_only_the_rest(out, kept, 2)
        assert tags_and_hashes(out) == first
    assert yaml.safe_load((out / "run.yaml").read_text())["overrides"] == ["out_path=out", "lr=1,2", "+q=5"]
    code, _, err = cli("--resume", "out", "q=6")
    assert code == 2 and "cannot resume 'out'" in err, "another value replaces it: other experiments"


def test_the_resume_command_printed_at_ctrl_c_finishes_a_sweep_tagged_with_its_override_dirname(tmp_path):
    # every experiment but lr=0 waits while its flag file is there: the Ctrl-C lands before they finish
    flags = tmp_path / "flags"
    flags.mkdir()
    for n in range(1, 12):
        (flags / str(n)).write_text("")
    write_project(tmp_path, TAGGED.replace("lr: 0.1\n", f"lr: 0.1\naction: sleep_while_flag\nflag: {flags}/${{lr}}\n"),
                  {})
    out = tmp_path / "od"
    argv = ["-m", "lr=range(12)", "hydra.sweep.dir=od", "backend=multiprocessing", "backend.num_workers=2",
            "verbose=true"]
    err = interrupted(argv, tmp_path, lambda: out / "results.jsonl")
    shutil.rmtree(flags)
    assert f"to finish it, run: {PROG} --resume od\n" in err
    assert 1 <= len(jsonl(out / "results.jsonl")) < 12
    first = tags_and_hashes(out)
    done = typed_in_a_shell(f"{PROG} --resume od", tmp_path)
    assert done.returncode == 0, done.stderr
    assert tags_and_hashes(out) == first
    assert sorted(line["tag"] for line in jsonl(out / "results.jsonl")) == sorted(f"run_lr={n}" for n in range(12))


# ---------------------------------------------------------------- run settings are left out


PROJECT = {"config.yaml": "fit: stages:fit\nverbose: false\na: 0\ntag: ${hydra:job.override_dirname}\n"}
#: A project whose own parameter is ``seed``: typed on the command line, it is a parameter's override.
SEEDED = {"config.yaml": PROJECT["config.yaml"] + "seed: 0\n"}


def experiments(tmp_path, overrides, files=PROJECT):
    """Each experiment of the sweep, as (tag, config hash), in order of tag."""
    composition, _ = composed(tmp_path, overrides, files=files, multirun=True)
    return sorted((config["tag"], config_hash(config)) for config in plan_sweep(composition).experiments)


@pytest.mark.parametrize("settings", [
    pytest.param(["backend=multiprocessing", "repetitions=2", "out_path=elsewhere"], id="ours"),
    pytest.param(["hydra/launcher=joblib", "hydra.sweep.dir=elsewhere"], id="hydras"),
    pytest.param(["backend=multiprocessing", "backend.num_workers=2", "timeout=30", "retries=1", "verbose=true",
                  "if_exists=overwrite", "num_cpus=1", "max_memory=null", "n_configs=2", "seed=3"],
                 id="more-of-ours"),
    pytest.param(["backend=single", "search=grid", "chdir=true", "+secret_keys=[]"], id="single-grid-chdir"),
    pytest.param(["fit=stages:fit", "pre=null", "post=null", "num_gpus=0"], id="stages"),
])
def test_run_settings_typed_on_the_command_line_are_not_part_of_override_dirname(tmp_path, settings):
    plain = experiments(tmp_path, ["a=1,2"])
    assert [tag for tag, _ in plain] == ["a=1", "a=2"]
    assert experiments(tmp_path, ["a=1,2", *settings]) == plain
    assert experiments(tmp_path, [*settings, "a=1,2"]) == plain


def test_a_projects_own_seed_stays_in_override_dirname_as_in_hydra_a_seed_typed_only_to_sample_is_left_out(tmp_path):
    assert [tag for tag, _ in experiments(tmp_path, ["a=1", "seed=1,2"], SEEDED)] == ["a=1,seed=1", "a=1,seed=2"]
    assert [tag for tag, _ in experiments(tmp_path, ["a=1,2", "seed=3"], SEEDED)] == ["a=1,seed=3", "a=2,seed=3"]
    sampled = experiments(tmp_path, ["a=1,2", "n_configs=2", "seed=3"], SEEDED)
    assert [tag for tag, _ in sampled] == ["a=1,seed=3", "a=2,seed=3"], "the stages receive it: it stays"
    assert experiments(tmp_path, ["a=1,2", "n_configs=2", "seed=4"], SEEDED) != sampled
    only_to_sample = experiments(tmp_path, ["a=1,2", "n_configs=2", "seed=3"])
    assert [tag for tag, _ in only_to_sample] == ["a=1", "a=2"], "no seed in the config: a run setting, left out"
