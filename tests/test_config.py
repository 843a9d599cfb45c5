"""Composition of configs and sweeps: defaults lists, groups, overrides, variations, the settings split."""
import re
import textwrap
from datetime import datetime

import pytest

from experiment_runner.config import RUN_KEYS, compose
from experiment_runner.expand import plan_sweep
from experiment_runner.expand import split_config
from experiment_runner.errors import ConfigError
from experiment_runner.config.overrides import parse_override


def write(root, files):
    """Write {relative path: YAML text} under root; return root."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def config(tmp_path, overrides=(), files=None):
    """The composed (unresolved) config of a project made of ``files`` (default: PROJECT)."""
    write(tmp_path, PROJECT if files is None else files)
    return compose(tmp_path, "config", list(overrides)).containers()[0]


def experiments(tmp_path, overrides=(), files=None):
    write(tmp_path, PROJECT if files is None else files)
    return plan_sweep(compose(tmp_path, "config", list(overrides))).experiments


PROJECT = {
    "config.yaml": """\
        defaults:
          - backend: single
          - model: forest
          - _self_
        fit: stages:fit
        lr: 0.1
        tags: [a, b]
        data:
          path: /data
          size: 10
        """,
    "backend/single.yaml": "name: single\n",
    "backend/ray.yaml": "name: ray\naddress: auto\nredis_password: hunter2\n",
    "model/forest.yaml": "name: forest\ndepth: 3\n",
    "model/linear.yaml": "name: linear\nl2: 0.5\n",
}


# ---------------------------------------------------------------- the override grammar

GOOD_OVERRIDES = [
    pytest.param("a=1", ("", "a", (1,), False), id="int"),
    pytest.param("a=0.1", ("", "a", (0.1,), False), id="float"),
    pytest.param("a=1e-3", ("", "a", (0.001,), False), id="float-exponent"),
    pytest.param("a=true", ("", "a", (True,), False), id="bool"),
    pytest.param("a=null", ("", "a", (None,), False), id="null"),
    pytest.param("a=text", ("", "a", ("text",), False), id="string"),
    pytest.param("a='1,2'", ("", "a", ("1,2",), False), id="quoted-string-with-comma"),
    pytest.param("a=", ("", "a", ("",), False), id="empty-string"),
    pytest.param("a=[1,2]", ("", "a", ([1, 2],), False), id="list"),
    pytest.param("a={x: 1, y: [a]}", ("", "a", ({"x": 1, "y": ["a"]},), False), id="dict"),
    pytest.param("a.b.c=1", ("", "a.b.c", (1,), False), id="nested-key"),
    pytest.param("+a=1", ("+", "a", (1,), False), id="add"),
    pytest.param("++a=1", ("++", "a", (1,), False), id="force-add"),
    pytest.param("~a", ("~", "a", (), False), id="delete"),
    pytest.param("~a=1", ("~", "a", (1,), False), id="delete-if-value"),
    pytest.param("a=1,2,3", ("", "a", (1, 2, 3), True), id="sweep"),
    pytest.param("a=range(3)", ("", "a", (0, 1, 2), True), id="range-stop"),
    pytest.param("a=range(1,10,4)", ("", "a", (1, 5, 9), True), id="range-step"),
    pytest.param("a=range(0,1,0.5)", ("", "a", (0.0, 0.5), True), id="range-float"),
    pytest.param("a=choice(x,y)", ("", "a", ("x", "y"), True), id="choice"),
    pytest.param("a=${b},${c}", ("", "a", ("${b}", "${c}"), True), id="interpolations"),
    pytest.param("db/engine=inno", ("", "db/engine", ("inno",), False), id="nested-group"),
    # backslashes and whitespace as Hydra's lexer reads them
    pytest.param(r"a=c:\foo\a-b.txt", ("", "a", (r"c:\foo\a-b.txt",), False), id="windows-path-keeps-backslashes"),
    pytest.param(r"a=\ ab", ("", "a", (" ab",), False), id="escaped-space"),
    pytest.param(r"a=x\,y\=z\(1\)", ("", "a", ("x,y=z(1)",), False), id="escaped-specials"),
    pytest.param(r"a='foo\\bar'", ("", "a", (r"foo\\bar",), False), id="quoted-backslashes-kept"),
    pytest.param(r"a='it\'s'", ("", "a", ("it's",), False), id="quoted-escaped-quote"),
    pytest.param("a= 1 ", ("", "a", (1,), False), id="outer-whitespace-dropped"),
    pytest.param("a=choice (x,y)", ("", "a", ("x", "y"), True), id="space-before-parenthesis"),
    # functions, as Hydra defines them
    pytest.param("a=range(0,10,3.3)", ("", "a", (0.0, 3.3, 6.6, 9.9), True), id="float-range-stepped-exactly"),
    pytest.param("a=range(5.5)", ("", "a", (0.0, 1.0, 2.0, 3.0, 4.0, 5.0), True), id="float-stop-gives-floats"),
    pytest.param("a=range(10,step=-3,stop=0)", ("", "a", (10, 7, 4, 1), True), id="range-keywords-negative-step"),
    pytest.param("a=int(3.14)", ("", "a", (3,), False), id="cast-int"),
    pytest.param("a=str([1,true])", ("", "a", (["1", "true"],), False), id="cast-str-of-list"),
    pytest.param("a=bool('false')", ("", "a", (False,), False), id="cast-bool-of-quoted"),
    pytest.param("a=float(1,2)", ("", "a", (1.0, 2.0), True), id="cast-of-several-is-a-sweep"),
    pytest.param("a=sort(b,c,a,reverse=true)", ("", "a", ("c", "b", "a"), True), id="sort-reverse"),
    pytest.param("a=sort(range(1,7,2),reverse=true)", ("", "a", (5, 3, 1), True), id="sort-range"),
    pytest.param("a=sort([3,1,2])", ("", "a", ([1, 2, 3],), False), id="sort-list-value"),
    pytest.param("a=tag(log,choice(1,2))", ("", "a", (1, 2), True), id="tag-labels-a-sweep"),
    pytest.param("a=choice(str(10),'x')", ("", "a", (10, "x"), True), id="sweep-values-typed-as-hydra-jobs"),
    pytest.param("a=str(10)", ("", "a", ("10",), False), id="one-value-keeps-its-cast"),
]


@pytest.mark.parametrize("text, expected", GOOD_OVERRIDES)
def test_an_override_is_parsed_into_its_kind_key_and_typed_values(text, expected):
    override = parse_override(text)
    assert (override.kind, override.key, override.values, override.sweep) == expected


BAD_OVERRIDES = [
    pytest.param("a", "missing '=value'", id="no-value"),
    pytest.param("=1", "'' is not a key", id="no-key"),
    pytest.param("a b=1", "'a b' is not a key", id="space-in-key"),
    pytest.param("a==1", "'==' is not an operator", id="double-equals"),
    pytest.param("a=1,", "empty value", id="trailing-comma"),
    pytest.param("a=[1,2", "expected ',' or ']'", id="unclosed-list"),
    pytest.param("a='x", "unterminated quoted string", id="unclosed-quote"),
    pytest.param("a=${b", "unterminated ${...}", id="unclosed-interpolation"),
    pytest.param("a=range(2,2)", "the range is empty", id="empty-range"),
    pytest.param("a=range(x)", "range(): argument start cannot be str at position 0 of 'range(x)'; "
                 "write range([start,] stop[, step])", id="range-of-text"),
    pytest.param("~a=1,2", "~key takes one value", id="delete-sweep"),
    # what Hydra's grammar refuses
    pytest.param("a=http://host:8080/x?q=1", "expected the end of the value, found '=' at position 20", id="url"),
    pytest.param("a=שלום", "'ש' cannot be in an unquoted value at position 0 of 'שלום'; quote the value",
                 id="unquoted-non-ascii"),
    pytest.param("a=A[B", "found '[' at position 1 of 'A[B'; quote the value ('...') or escape the character",
                 id="unbalanced-bracket"),
    pytest.param("a=b=c", "found '='", id="equal-sign-in-value"),
    pytest.param("a=f(x)", "unknown function f() at position 0 of 'f(x)'; the functions are bool, choice,",
                 id="unknown-function"),
    pytest.param("a={'k': 1}", "expected a dict key (unquoted: quotes and ${...} cannot be in a key)",
                 id="quoted-dict-key"),
    pytest.param(" a = 1", "no spaces around the key; write a=...", id="spaces-around-the-key"),
    pytest.param("a=[choice(1,2)]", "a sweep must be the whole value", id="sweep-inside-a-list"),
    pytest.param("a=choice(range(1,3))", "choice(): argument args cannot be RangeSweep", id="range-inside-choice"),
    pytest.param("a=range(0,1,0)", "the step must not be 0", id="range-step-zero"),
    pytest.param("a=int(inf)", "int(): cannot convert float infinity to integer", id="cast-int-of-infinity"),
    pytest.param("a=shuffle(seed=1,list=[1])", "got an unexpected keyword argument 'seed'", id="shuffle-has-no-seed"),
    pytest.param("a=choice('שלום')", "the swept value 'שלום' is no valid override text once written out",
                 id="sweep-value-hydra-jobs-cannot-read"),
]


@pytest.mark.parametrize("text, message", BAD_OVERRIDES)
def test_a_malformed_override_is_an_error_naming_it(text, message):
    with pytest.raises(ConfigError) as caught:
        parse_override(text)
    assert f"bad override {text!r}" in str(caught.value)
    assert message in str(caught.value)


# ---------------------------------------------------------------- overrides applied to a composed config

APPLIED = [
    pytest.param(["lr=0.5"], {"lr": 0.5}, id="change"),
    pytest.param(["data.size=20"], {"data": {"path": "/data", "size": 20}}, id="change-nested"),
    pytest.param(["tags=[x]"], {"tags": ["x"]}, id="replace-list"),
    pytest.param(["data={size: 20}"], {"data": {"path": "/data", "size": 20}}, id="merge-dict"),
    pytest.param(["+data={a: 1}"], {"data": {"path": "/data", "size": 10, "a": 1}}, id="merge-dict-adding"),
    pytest.param(["++data={a: 1}"], {"data": {"path": "/data", "size": 10, "a": 1}}, id="merge-dict-forced"),
    pytest.param(["data={size: 20},{size: 30}"], {"data": {"_variation_": [{"path": "/data", "size": 20},
                                                                          {"path": "/data", "size": 30}]}},
                 id="merge-dict-sweep"),
    pytest.param(["+extra=1"], {"extra": 1}, id="add"),
    pytest.param(["+data.new.deep=x"], {"data": {"path": "/data", "size": 10, "new": {"deep": "x"}}}, id="add-nested"),
    pytest.param(["++lr=2", "++other=3"], {"lr": 2, "other": 3}, id="force-add"),
    pytest.param(["~lr"], {"lr": "<absent>"}, id="delete"),
    pytest.param(["~lr=0.1"], {"lr": "<absent>"}, id="delete-if-value"),
    pytest.param(["repetitions=3", "n_configs=2"], {"repetitions": 3, "n_configs": 2},
                 id="run-settings-always-settable"),
    pytest.param(["model=linear"], {"model": {"name": "linear", "l2": 0.5}}, id="group-option"),
    pytest.param(["model=linear", "model.l2=1"], {"model": {"name": "linear", "l2": 1}}, id="group-then-key"),
    pytest.param(["~model"], {"model": "<absent>"}, id="delete-group"),
    pytest.param(["lr=${data.size}"], {"lr": "${data.size}"}, id="interpolation-kept"),
    pytest.param(["lr=1,2"], {"lr": {"_variation_": [1, 2]}}, id="sweep-marks-a-dimension"),
]


@pytest.mark.parametrize("overrides, expected", APPLIED)
def test_overrides_change_the_composed_config(tmp_path, overrides, expected):
    composed = config(tmp_path, overrides)
    for key, value in expected.items():
        assert composed.get(key, "<absent>") == value


APPLIED_ERRORS = [
    pytest.param(["lrr=0.5"], "the config has no key 'lrr'; did you mean lr?", id="unknown-key-names-closest"),
    pytest.param(["data.sise=1"], "did you mean data.size?", id="unknown-nested-key"),
    pytest.param(["data.size.x=1"], "the config has no key 'data.size.x'", id="key-below-a-value"),
    pytest.param(["lrr=0.5"], "to add a new key, use +lrr=0.5", id="unknown-key-suggests-plus"),
    pytest.param(["+lr=1"], "'lr' is already in the config; use lr=1", id="add-existing"),
    pytest.param(["data={a: 1}"], "override 'data={a: 1}': 'data' has no key 'a' to merge into; to add keys, use "
                 "+data={a: 1}", id="merge-dict-new-key"),
    pytest.param(["tags={a: 1}"], "'tags' holds a list; give it a list, or delete it first with ~tags",
                 id="list-to-dict"),
    pytest.param(["data=[1]"], "'data' holds a dict; give it a dict", id="dict-to-list"),
    pytest.param(["~nothing"], "there is no key 'nothing' to delete", id="delete-absent"),
    pytest.param(["~lr=3"], "'lr' is 0.1, not 3", id="delete-wrong-value"),
    pytest.param(["model=forrest"], "config group 'model' has no option 'forrest'; did you mean forest?",
                 id="unknown-option-names-closest"),
    pytest.param(["model=nothing"], "(options: forest, linear)", id="unknown-option-lists-options"),
    pytest.param(["+model=linear"], "config group 'model' is already in the defaults list", id="add-present-group"),
    pytest.param(["mdel=forest"], "did you mean model?", id="misspelt-group"),
    pytest.param(["model/x=1"], "there is no config group 'model/x'", id="unknown-nested-group"),
    pytest.param(["lr=${nowhere}"], "Interpolation key 'nowhere' not found (at lr)", id="bad-interpolation"),
]


@pytest.mark.parametrize("overrides, message", APPLIED_ERRORS)
def test_a_bad_override_is_an_error_naming_the_override_and_the_fix(tmp_path, overrides, message):
    write(tmp_path, PROJECT)
    with pytest.raises(ConfigError) as caught:
        plan_sweep(compose(tmp_path, "config", overrides))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


# ---------------------------------------------------------------- groups and the defaults list


def test_self_last_overrides_the_defaults_and_self_first_is_overridden(tmp_path):
    files = {"model/forest.yaml": "depth: 3\n"}
    last = {"config.yaml": "defaults: [{model: forest}, _self_]\nmodel: {depth: 10}\n", **files}
    first = {"config.yaml": "defaults: [_self_, {model: forest}]\nmodel: {depth: 10}\n", **files}
    implicit = {"config.yaml": "defaults: [{model: forest}]\nmodel: {depth: 10}\n", **files}
    assert config(tmp_path / "last", files=last)["model"] == {"depth": 10}
    assert config(tmp_path / "first", files=first)["model"] == {"depth": 3}
    assert config(tmp_path / "implicit", files=implicit)["model"] == {"depth": 10}


def test_defaults_compose_in_order_and_later_options_win(tmp_path):
    files = {
        "config.yaml": "defaults: [{a: one}, {b: two}, base]\n",
        "a/one.yaml": "# @package _global_\nx: 1\ny: 1\n",
        "b/two.yaml": "# @package _global_\ny: 2\n",
        "base.yaml": "z: 3\n",
    }
    assert config(tmp_path, files=files) == {"x": 1, "y": 2, "z": 3}


def test_nested_groups_relative_to_their_option_with_default_packages(tmp_path):
    files = {
        "config.yaml": "defaults: [{server: apache}, {/server/db: sqlite}]\n",
        "server/apache.yaml": "defaults:\n  - db: mysql\nname: apache\n",
        "server/db/mysql.yaml": "name: mysql\n",
        "server/db/sqlite.yaml": "name: sqlite\n",
    }
    with pytest.raises(ConfigError, match="'server/db' is selected twice"):
        config(tmp_path, files=files)
    files["config.yaml"] = "defaults: [{server: apache}]\ndebug: false\n"
    assert config(tmp_path, files=files) == {"server": {"db": {"name": "mysql"}, "name": "apache"}, "debug": False}
    assert config(tmp_path, ["server/db=sqlite"], files=files)["server"]["db"] == {"name": "sqlite"}


def test_package_headers_place_an_option_at_the_top_or_at_a_path(tmp_path):
    files = {
        "config.yaml": "defaults: [{exp: big}, {db: mysql}]\n",
        "exp/big.yaml": "# @package _global_\nsize: 100\nmodel: {depth: 9}\n",
        "db/mysql.yaml": "# @package store.sql\n# a comment after the header\nport: 3306\n",
    }
    assert config(tmp_path, files=files) == {"size": 100, "model": {"depth": 9}, "store": {"sql": {"port": 3306}}}
    # as in Hydra, a plain comment ends the header: a '# @package' after it is only a comment
    files["db/mysql.yaml"] = "# A comment first\n# @package store.sql\nport: 3306\n"
    assert config(tmp_path, files=files) == {"size": 100, "model": {"depth": 9}, "db": {"port": 3306}}


EXPERIMENT_PROJECT = {
    "config.yaml": "defaults:\n  - db: mysql\n  - server: apache\n  - _self_\nlr: 0.1\n",
    "db/mysql.yaml": "name: mysql\n",
    "db/sqlite.yaml": "name: sqlite\n",
    "server/apache.yaml": "name: apache\nport: 80\n",
    "server/nginx.yaml": "name: nginx\nport: 80\n",
    "experiment/fast.yaml": "# @package _global_\ndefaults:\n  - override /db: sqlite\n  - override /server: nginx\n"
                            "server:\n  port: 8080\nlr: 0.5\n",
}


def test_an_added_experiment_overrides_options_of_the_primary_defaults_list_and_the_command_line_wins(tmp_path):
    write(tmp_path, EXPERIMENT_PROJECT)
    composition = compose(tmp_path, "config", ["+experiment=fast"])
    assert composition.containers()[0] == {"db": {"name": "sqlite"}, "server": {"name": "nginx", "port": 8080},
                                           "lr": 0.5}
    assert composition.choices == {"db": "sqlite", "server": "nginx", "experiment": "fast"}
    origins = composition.branches[0].origins
    assert origins["db"].endswith("db/sqlite.yaml") and origins["server"].endswith("experiment/fast.yaml")
    assert compose(tmp_path, "config", ["+experiment=fast", "db=mysql"]).containers()[0]["db"] == {"name": "mysql"}
    swept = compose(tmp_path, "config", ["+experiment=fast", "server=apache,nginx"])
    assert [c["server"]["name"] for c in swept.containers()] == ["apache", "nginx"]


def test_an_interpolated_defaults_entry_follows_the_options_chosen_in_each_branch(tmp_path):
    files = {
        "config.yaml": "defaults:\n  - dataset: imagenet\n  - model: alexnet\n"
                       "  - optional dataset_model: ${dataset}_${model}\n",
        "dataset/imagenet.yaml": "name: imagenet\n",
        "dataset/cifar10.yaml": "name: cifar10\n",
        "model/alexnet.yaml": "layers: 7\n",
        "dataset_model/cifar10_alexnet.yaml": "# @package _global_\nmodel: {layers: 5}\n",
    }
    write(tmp_path, files)
    composition = compose(tmp_path, "config", ["dataset=imagenet,cifar10"])
    assert [c["model"] for c in composition.containers()] == [{"layers": 7}, {"layers": 5}]
    assert composition.branches[1].choices["dataset_model"] == "cifar10_alexnet"


def test_one_group_at_two_packages_is_chosen_per_package(tmp_path):
    files = {
        "config.yaml": "defaults:\n  - db@primary: mysql\n  - db@replica: mysql\n",
        "db/mysql.yaml": "name: mysql\n",
        "db/sqlite.yaml": "name: sqlite\n",
    }
    write(tmp_path, files)
    composition = compose(tmp_path, "config", ["db@replica=sqlite"])
    assert composition.containers()[0] == {"primary": {"name": "mysql"}, "replica": {"name": "sqlite"}}
    assert composition.choices == {"db@primary": "mysql", "db@replica": "sqlite"}
    with pytest.raises(ConfigError, match=r"^override 'db=sqlite': config group 'db' is not in the defaults list "
                                          r"\(it holds db@primary, db@replica\); to add it, use \+db=sqlite$"):
        compose(tmp_path, "config", ["db=sqlite"])


def test_no_primary_config_composes_what_the_command_line_adds(tmp_path):
    write(tmp_path, {"db/mysql.yaml": "name: mysql\n"})
    assert compose(tmp_path, None, ["+db=mysql", "+lr=0.1"]).containers()[0] == {"db": {"name": "mysql"}, "lr": 0.1}
    with pytest.raises(ConfigError, match="^override 'db=mysql': config group 'db' is not in the defaults list"):
        compose(tmp_path, None, ["db=mysql"])


def test_optional_null_added_and_removed_groups(tmp_path):
    files = {
        "config.yaml": "defaults:\n  - optional extra: missing\n  - model: null\n  - _self_\nx: 1\n",
        "model/forest.yaml": "depth: 3\n",
        "extra/real.yaml": "e: 1\n",
    }
    assert config(tmp_path, files=files) == {"x": 1}
    assert config(tmp_path, ["model=forest"], files=files) == {"x": 1, "model": {"depth": 3}}
    assert config(tmp_path, ["extra=real"], files=files) == {"x": 1, "extra": {"e": 1}}
    files["config.yaml"] = "defaults: [{model: forest}]\n"
    assert config(tmp_path, ["~model"], files=files) == {}
    assert config(tmp_path, ["+extra=real"], files=files) == {"model": {"depth": 3}, "extra": {"e": 1}}
    with pytest.raises(ConfigError, match="not in the defaults list; to add it, use \\+extra=real"):
        config(tmp_path, ["extra=real"], files=files)


BAD_FILES = [
    pytest.param({"config.yaml": "a: 1\nb: [1, 2\nc: 3\n"}, "config.yaml, line 3: bad YAML", id="bad-yaml"),
    pytest.param({"config.yaml": "a: 1\na: 2\n"}, "config.yaml, line 2: bad YAML: found duplicate key a",
                 id="duplicate-key"),
    pytest.param({"config.yaml": "- 1\n- 2\n"}, "a config must be a mapping of keys", id="not-a-mapping"),
    pytest.param({"config.yaml": "defaults: [{model: nope}]\n", "model/a.yaml": "x: 1\n"},
                 "config.yaml: defaults list: config group 'model' has no option 'nope' (options: a)",
                 id="unknown-option-in-defaults"),
    pytest.param({"config.yaml": "defaults: [{model: a}]\n", "model/a.yaml": "x: [\n"},
                 "model/a.yaml, at the end of the file: bad YAML", id="bad-yaml-in-option"),
    pytest.param({"config.yaml": "defaults: [base]\n"}, "includes 'base'", id="missing-include"),
    pytest.param({"config.yaml": "defaults: {model: a}\n"}, "defaults must be a list", id="defaults-not-a-list"),
    pytest.param({"config.yaml": "defaults: [{override model: a}]\n"},
                 "config.yaml: 'override model: a' matches no entry of the defaults list", id="override-of-nothing"),
    pytest.param({"config.yaml": "a: ${oops\n"}, "config.yaml:", id="bad-interpolation-syntax"),
]


@pytest.mark.parametrize("files, message", BAD_FILES)
def test_a_bad_config_file_is_one_line_naming_the_file(tmp_path, files, message):
    with pytest.raises(ConfigError) as caught:
        config(tmp_path, files=files)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_primary_config_says_how_to_choose_one(tmp_path):
    with pytest.raises(ConfigError, match="no primary config .*config.yaml: create it, or choose one with"):
        compose(tmp_path, "config")


# ---------------------------------------------------------------- sweeps

SWEEPS = [
    pytest.param([], 1, id="no-dimension-is-one-experiment"),
    pytest.param(["lr=0.1,0.2,0.3"], 3, id="grid-override"),
    pytest.param(["lr=0.1,0.2,0.3", "data.size=1,2"], 6, id="two-grid-overrides"),
    pytest.param(["lr=range(0,10)"], 10, id="range"),
    pytest.param(["lr=choice(1,2)"], 2, id="choice"),
    pytest.param(["model=forest,linear"], 2, id="group-sweep"),
    pytest.param(["model=forest,linear", "lr=1,2,3"], 6, id="group-and-value-sweep"),
    pytest.param(["lr=range(100)", "n_configs=7"], 7, id="n-configs-samples"),
    pytest.param(["lr=1,2", "n_configs=50"], 2, id="n-configs-above-the-space"),
    pytest.param(["+x=${variation:1,2,3}"], 3, id="variation-given-on-the-command-line"),
]


@pytest.mark.parametrize("overrides, count", SWEEPS)
def test_a_sweep_expands_to_the_right_number_of_experiments(tmp_path, overrides, count):
    found = experiments(tmp_path, overrides)
    assert len(found) == count
    assert len({repr(sorted(e.items())) for e in found}) == count


def test_glob_sweeps_the_options_of_a_group_whose_names_match(tmp_path):
    files = {**PROJECT, "model/lasso.yaml": "name: lasso\n"}
    found = experiments(tmp_path, ["model=glob([l*,f*],exclude=linear)"], files=files)
    assert [e["model"]["name"] for e in found] == ["forest", "lasso"]


@pytest.mark.parametrize("override, message", [
    pytest.param("lr=glob(*)", "override 'lr=glob(*)': glob() selects options of a config group, and 'lr' is not one",
                 id="not-a-group"),
    pytest.param("model=glob(x*)", "override 'model=glob(x*)': no option of 'model' matches, so no experiment "
                 "would run; its options are forest, linear", id="no-option-matches"),
])
def test_a_glob_that_selects_no_option_is_an_error(tmp_path, override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        experiments(tmp_path, [override])


def test_shuffle_runs_every_value_once_in_a_random_order(tmp_path):
    found = [e["lr"] for e in experiments(tmp_path, ["lr=shuffle(range(20))"])]
    assert sorted(found) == list(range(20))


def test_a_grid_varies_the_command_lines_sweeps_in_its_order_the_last_fastest(tmp_path):
    found = experiments(tmp_path, ["data.size=1,2", "lr=0.1,0.2"])
    assert [(e["lr"], e["data"]["size"]) for e in found] == [(0.1, 1), (0.2, 1), (0.1, 2), (0.2, 2)]
    found = experiments(tmp_path, ["lr=0.1,0.2", "data.size=1,2"])
    assert [(e["lr"], e["data"]["size"]) for e in found] == [(0.1, 1), (0.1, 2), (0.2, 1), (0.2, 2)]


def test_dimensions_written_in_the_config_vary_after_the_command_lines_sweeps(tmp_path):
    files = {"config.yaml": "a: ${variation:1,2}\nb: 0\n"}
    found = experiments(tmp_path, ["b=3,4"], files=files)
    assert [(e["a"], e["b"]) for e in found] == [(1, 3), (2, 3), (1, 4), (2, 4)]


def test_yaml_variations_are_dimensions_also_nested_and_in_lists(tmp_path):
    files = {
        "config.yaml": """\
            lr: ${variation:0.1,0.01}
            layers: ['${variation:8,16}', 4]
            optim: '${variation:{name:sgd,momentum:${variation:0.0,0.9}},{name:adam}}'
            """,
    }
    found = experiments(tmp_path, files=files)
    assert len(found) == 2 * 2 * 3
    assert {e["layers"][0] for e in found} == {8, 16}
    assert {e["optim"]["name"] for e in found} == {"sgd", "adam"}
    assert sorted({e["optim"].get("momentum", -1) for e in found}) == [-1, 0.0, 0.9]


def test_group_sweep_options_bring_their_own_dimensions(tmp_path):
    files = {
        "config.yaml": "defaults: [{model: a}]\n",
        "model/a.yaml": "name: a\nk: ${variation:1,2,3}\n",
        "model/b.yaml": "name: b\n",
    }
    found = experiments(tmp_path, ["model=a,b"], files=files)
    assert [e["model"] for e in found] == [{"name": "a", "k": 1}, {"name": "a", "k": 2}, {"name": "a", "k": 3},
                                          {"name": "b"}]


def test_sampling_is_unique_and_reproducible_with_seed(tmp_path):
    overrides = ["lr=range(1000)", "data.size=range(1000)", "n_configs=20", "seed=7"]
    first = experiments(tmp_path, overrides)
    assert first == experiments(tmp_path, overrides)
    assert len({(e["lr"], e["data"]["size"]) for e in first}) == 20
    assert first != experiments(tmp_path, overrides[:-1] + ["seed=8"])


def test_without_a_seed_sampling_picks_one_and_reports_it(tmp_path):
    write(tmp_path, PROJECT)
    plan = plan_sweep(compose(tmp_path, "config", ["lr=range(50)", "n_configs=5"]))
    again = plan_sweep(compose(tmp_path, "config", ["lr=range(50)", "n_configs=5", f"seed={plan.seed}"]))
    assert isinstance(plan.seed, int) and plan.experiments == again.experiments
    assert (plan.size, plan.dimensions, plan.n_configs) == (50, ["lr"], 5)


def test_interpolations_follow_the_swept_values(tmp_path):
    files = {"config.yaml": "lr: ${variation:1,2}\nname: run_${lr}\ncopy: ${lr}\nstamp: ${now:%Y}\n"}
    found = experiments(tmp_path, files=files)
    year = str(datetime.now().year)
    assert found == [{"lr": 1, "name": "run_1", "copy": 1, "stamp": year},
                     {"lr": 2, "name": "run_2", "copy": 2, "stamp": year}]


SWEEP_ERRORS = [
    pytest.param(["repetitions=1,2"], "run setting 'repetitions' cannot be swept", id="swept-setting"),
    pytest.param(["+backend.address=a,b"], "run setting 'backend' cannot be swept", id="swept-backend-option"),
    pytest.param(["+x=a_${variation:1,2}"], "must be the whole value of a key", id="variation-inside-a-string"),
    pytest.param(["+x=${variation:}"], "a variation needs a list of choices", id="empty-variation"),
    pytest.param(["lr=range(2000)", "data.size=range(1000)"], "set n_configs=N to sample", id="grid-too-big"),
    pytest.param(["n_configs=-1"], "n_configs must be a whole number", id="negative-n-configs"),
    pytest.param(["+seed=x", "n_configs=1"], "seed must be a whole number or null", id="seed-not-a-number"),
    pytest.param(["seed=x"], "override 'seed=x': seed without a seed key in the config seeds the sampling",
                 id="seed-setting-not-a-number"),
    pytest.param(["model=forest,linear", "+model.repetitions=2", "++repetitions=${model.name}"],
                 "run settings differ between model=forest and model=linear: repetitions;", id="settings-differ"),
]


@pytest.mark.parametrize("overrides, message", SWEEP_ERRORS)
def test_a_sweep_that_cannot_expand_is_an_error(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("$", r"\$")):
        experiments(tmp_path, overrides)


# ---------------------------------------------------------------- run settings vs experiment parameters


def test_run_settings_are_the_known_top_level_keys_and_the_backend_node(tmp_path):
    write(tmp_path, PROJECT)
    overrides = ["backend=ray", "repetitions=2", "+timeout=5", "n_configs=1", "seed=0"]
    plan = plan_sweep(compose(tmp_path, "config", overrides))
    assert plan.basecfg == {"backend": "ray", "fit": "stages:fit", "repetitions": 2, "timeout": 5,
                            "address": "auto", "redis_password": "hunter2"}
    assert plan.experiments == [{"lr": 0.1, "tags": ["a", "b"], "data": {"path": "/data", "size": 10},
                                 "model": {"name": "forest", "depth": 3}}]
    settings, params = split_config({"out_path": "x", "seed": 1, "n_configs": 2, "alpha": 3, "backend": "single"})
    assert (settings, params) == ({"out_path": "x", "seed": 1, "n_configs": 2, "backend": "single"},
                                  {"seed": 1, "alpha": 3})
    assert {"out_path", "fit", "repetitions", "backend", "n_configs", "seed"} <= RUN_KEYS


def test_a_projects_own_seed_reaches_the_experiments_and_seeds_the_sampling(tmp_path):
    files = {"config.yaml": "seed: 42\nlr: ${variation:1,2,3,4}\n"}
    assert [e["seed"] for e in experiments(tmp_path, files=files)] == [42] * 4
    assert [(e["seed"], e["lr"]) for e in experiments(tmp_path, ["seed=1,2"], files=files)][:2] == [(1, 1), (1, 2)]
    sampled = experiments(tmp_path, ["n_configs=2"], files=files)
    assert [e["seed"] for e in sampled] == [42, 42] and sampled == experiments(tmp_path, ["n_configs=2"], files=files)
    with pytest.raises(ConfigError, match="seed is swept, but it also seeds the sampling of n_configs=2"):
        experiments(tmp_path, ["n_configs=2", "seed=1,2"], files=files)


def test_a_seed_given_only_for_sampling_is_no_parameter(tmp_path):
    files = {"config.yaml": "lr: ${variation:1,2,3,4}\n"}
    sampled = experiments(tmp_path, ["n_configs=2", "seed=3"], files=files)
    assert len(sampled) == 2 and all(set(e) == {"lr"} for e in sampled)
    assert [set(e) for e in experiments(tmp_path, ["n_configs=2", "+seed=3"], files=files)] == [{"lr", "seed"}] * 2


def test_the_backend_name_defaults_to_the_option_chosen(tmp_path):
    files = {**PROJECT, "backend/single.yaml": "num_cpus: 2\n"}
    write(tmp_path, files)
    assert plan_sweep(compose(tmp_path, "config")).basecfg["backend"] == "single"
    assert plan_sweep(compose(tmp_path, "config")).basecfg["num_cpus"] == 2


EXPLICIT_WINS = [
    pytest.param(["num_cpus=4"], {}, 4, id="top-level-override-beats-backend-file"),
    pytest.param(["++num_cpus=4"], {}, 4, id="force-added-top-level-beats-backend-file"),
    pytest.param([], {"config.yaml": PROJECT["config.yaml"] + "num_cpus: 3\n"}, 3,
                 id="top-level-key-of-a-file-beats-backend-file"),
    pytest.param(["backend.num_cpus=5"], {"config.yaml": PROJECT["config.yaml"] + "num_cpus: 3\n"}, 5,
                 id="backend-override-beats-top-level-file-key"),
    pytest.param(["backend.num_cpus=5", "num_cpus=5"], {}, 5, id="two-overrides-agreeing"),
    pytest.param([], {}, 2, id="backend-file-default-alone"),
]


@pytest.mark.parametrize("overrides, files, expected", EXPLICIT_WINS)
def test_a_setting_the_user_gave_explicitly_beats_the_backend_files_default(tmp_path, overrides, files, expected):
    write(tmp_path, {**PROJECT, "backend/single.yaml": "name: single\nnum_cpus: 2\n", **files})
    assert plan_sweep(compose(tmp_path, "config", overrides)).basecfg["num_cpus"] == expected


def test_a_setting_given_by_two_overrides_that_disagree_is_an_error_naming_both(tmp_path):
    files = {**PROJECT, "backend/single.yaml": "name: single\nnum_cpus: 2\n"}
    with pytest.raises(ConfigError) as caught:
        experiments(tmp_path, ["num_cpus=4", "backend.num_cpus=8"], files=files)
    assert str(caught.value) == (
        "num_cpus is given twice, by override 'num_cpus=4' and by override 'backend.num_cpus=8': "
        "keep one, e.g. backend.num_cpus=..."
    )


def test_declared_secrets_are_masked_in_the_printed_config_and_names_alone_make_no_secret(tmp_path):
    write(tmp_path, PROJECT)
    overrides = ["backend=ray", "+secret_keys=[api_key, db.password]", "+api_key=abc", "+db={password: pw, host: h}",
                 "+max_tokens=512", "+tokenizer=bpe", "+secretary_n=3"]
    composition = compose(tmp_path, "config", overrides)
    text = composition.to_yaml() + composition.to_yaml(resolve=True)
    assert "hunter2" not in text and "abc" not in text and "pw" not in text
    assert "redis_password: '***'" in text and "api_key: '***'" in text and "password: '***'" in text
    assert "max_tokens: 512" in text and "tokenizer: bpe" in text and "secretary_n: 3" in text
    assert [o.masked_text() for o in composition.overrides][2:4] == ["+api_key=***", "+db=***"]
    plan = plan_sweep(composition)
    assert plan.basecfg["redis_password"] == "hunter2" and plan.basecfg["secret_keys"] == ["api_key", "db.password"]
    assert plan.experiments[0]["api_key"] == "abc" and plan.experiments[0]["db"]["password"] == "pw"


DERIVED_FROM_A_SECRET = """\
    secret_keys: [api_key, db.password]
    api_key: ${oc.env:MY_API_KEY}
    db: {password: pw, host: h, url: "postgres://u:${.password}@${.host}"}
    header: "Bearer ${api_key}"
    selected: ${oc.select:api_key,none}
    relayed: ${header}
    headers: ["${api_key}", plain]
    tag: ${variation:'key ${api_key}',none}
    unset: ${oc.env:NOT_SET_ANYWHERE}/${api_key}
    host_copy: ${db.host}
    name: run_${lr}
    lr: ${variation:0.1,0.2}
    """


def test_a_key_that_interpolates_a_secret_is_secret_too_in_any_form(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_API_KEY", "ENVSECRET")
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    write(tmp_path, {"config.yaml": DERIVED_FROM_A_SECRET})
    composition = compose(tmp_path, "config", ["+copied='${selected}-x'"])
    assert composition.derived_secret_keys == {
        "db.url", "header", "selected", "relayed", "headers.0", "tag", "unset", "copied"}
    assert {"api_key", "db.password"} <= composition.secret_keys
    text = composition.to_yaml()
    assert "host_copy: ${db.host}" in text and "name: run_${lr}" in text and "header: '***'" in text


def test_the_parameters_that_interpolate_a_secret_join_the_runs_secret_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_API_KEY", "ENVSECRET")
    files = {"config.yaml": "secret_keys: [api_key]\napi_key: ${oc.env:MY_API_KEY}\nheader: Bearer ${api_key}\n"
                            "lr: ${variation:0.1,0.2}\n"}
    write(tmp_path, files)
    plan = plan_sweep(compose(tmp_path, "config"))
    assert plan.basecfg["secret_keys"] == ["api_key", "header"]
    assert [experiment["header"] for experiment in plan.experiments] == ["Bearer ENVSECRET"] * 2


SECRET_IN_ERRORS = [
    pytest.param({}, ["db_password=S3CRET"],
                 "override 'db_password=***': the config has no key 'db_password' "
                 "(to add a new key, use +db_password=***)", id="unknown-key"),
    pytest.param({}, ["backend=ray", "+backend.redis_password=S3CRET"],
                 "override '+backend.redis_password=***': 'backend.redis_password' is already in the config; "
                 "use backend.redis_password=*** to change it (or ++backend.redis_password=***)", id="backend-secret"),
    pytest.param({}, ["+db_password=[S3CRET"],
                 "bad override '+db_password=***': expected ',' or ']' at position 7 of the value", id="malformed"),
    pytest.param({}, ["~lr=S3CRET", "+secret_keys=[lr]"], "override '~lr=***': 'lr' is not the value given",
                 id="delete-other-value"),
    pytest.param({"model/vault.yaml": "# @package _global_\nsecret_keys: [token]\ntoken: placeholder\n"},
                 ["model=vault", "tokn=S3CRET", "+secret_keys=[tokn]"],
                 "override 'tokn=***': the config has no key 'tokn'; did you mean token? "
                 "(to add a new key, use +tokn=***)", id="declared-by-overrides"),
    pytest.param({}, ["+db_password=pw", "db_pasword=NEWSEC"],
                 "override 'db_pasword=***': the config has no key 'db_pasword'; did you mean db_password? "
                 "(to add a new key, use +db_pasword=***)", id="misspelt-secret"),
    pytest.param({}, ["+db_password=S3C!RET"], "bad override '+db_password=***': a character that cannot be in an "
                 "unquoted value at position 3 of the value; quote the value ('...') or escape the character with a "
                 "backslash", id="unreadable-character"),
    pytest.param({}, ["+db_password=S3C=RET"], "bad override '+db_password=***': expected the end of the value at "
                 "position 3 of the value; write name=value only inside a function's parentheses, quote the value "
                 "('...') or escape the character with a backslash", id="unexpected-token"),
    pytest.param({}, ["+db_password=bool(S3CRET)"], "bad override '+db_password=***': wrong arguments to bool() at "
                 "position 0 of the value; write bool(value)", id="function-argument"),
    pytest.param({}, ["+db_password=S3CRET(1)"], "bad override '+db_password=***': an unknown function at position 0 "
                 "of the value; the functions are bool, choice, float, glob, int, interval, range, shuffle, sort, str, "
                 "tag; to pass the text itself, quote the value", id="unknown-function"),
    pytest.param({"model/vault.yaml": "# @package _global_\nsecret_keys: [token]\ntoken: placeholder\n",
                  "config.yaml": PROJECT["config.yaml"]}, ["model=vault", "+token=S3CRET"],
                 "override '+token=***': 'token' is already in the config; use token=*** to change it "
                 "(or ++token=***)", id="declared-by-an-option-file"),
]


@pytest.mark.parametrize("files, overrides, message", SECRET_IN_ERRORS)
def test_an_error_about_an_override_of_a_secret_never_shows_its_value(tmp_path, files, overrides, message):
    declared = {"config.yaml": textwrap.dedent(PROJECT["config.yaml"]) + "secret_keys: [db_password]\n"}
    project = {**PROJECT, **declared, **files}
    with pytest.raises(ConfigError) as caught:
        experiments(tmp_path, overrides, files=project)
    assert str(caught.value) == message


def test_the_printed_config_is_yaml_with_interpolations_and_dimensions_visible(tmp_path):
    files = {"config.yaml": "out_path: results/${now:%Y}\nlr: ${variation:1,2}\n"}
    write(tmp_path, files)
    composition = compose(tmp_path, "config", ["+depth=3,4"], now=datetime(2024, 5, 6))
    assert composition.to_yaml() == (
        "out_path: results/${now:%Y}\nlr: ${variation:1,2}\ndepth: ${variation:3,4}\n"
    )
    assert composition.to_yaml(resolve=True) == (
        "out_path: results/2024\nlr: ${variation:1,2}\ndepth: ${variation:3,4}\n"
    )


def test_a_group_sweep_mixing_interpolated_and_plain_options_expands_each(tmp_path):
    files = {
        "config.yaml": "defaults: [{model: a}]\nlr: ${variation:1,2}\n",
        "model/a.yaml": "name: a\ntag: a_${lr}\n",
        "model/b.yaml": "name: b\n",
    }
    found = experiments(tmp_path, ["model=a,b"], files=files)
    assert [e["model"] for e in found] == [{"name": "a", "tag": "a_1"}, {"name": "a", "tag": "a_2"},
                                          {"name": "b"}, {"name": "b"}]


RUN_KEY_TYPOS = [
    pytest.param({"config.yaml": "fit: stages:fit\nrepetitons: 5\n"}, [], "config.yaml: top-level key 'repetitons' "
                 "looks like the run setting 'repetitions' misspelt", id="deleted-letter"),
    pytest.param({"config.yaml": "timout: 10\n"}, [], "'timout' looks like the run setting 'timeout'",
                 id="timeout-missing-letter"),
    pytest.param({"config.yaml": "if_exist: resume\n"}, [], "'if_exist' looks like the run setting 'if_exists'",
                 id="if-exists-missing-s"),
    pytest.param({"config.yaml": "retires: 2\n"}, [], "'retires' looks like the run setting 'retries'",
                 id="transposed-letters"),
    pytest.param({"config.yaml": "verbbose: true\n"}, [], "'verbbose' looks like the run setting 'verbose'",
                 id="inserted-letter"),
    pytest.param({"config.yaml": "n_confugs: 3\n"}, [], "'n_confugs' looks like the run setting 'n_configs'",
                 id="substituted-letter"),
    pytest.param({"config.yaml": "defaults: [{extra: a}]\n", "extra/a.yaml": "# @package _global_\nnum_cpu: 2\n"},
                 [], "extra/a.yaml: top-level key 'num_cpu' looks like the run setting 'num_cpus'",
                 id="names-the-option-file"),
    pytest.param({"config.yaml": "a: 1\n"}, ["+repetitons=5"], "override '+repetitons=5': top-level key",
                 id="names-the-override"),
]


@pytest.mark.parametrize("files, overrides, message", RUN_KEY_TYPOS)
def test_a_top_level_key_one_typo_from_a_run_setting_is_an_error(tmp_path, files, overrides, message):
    with pytest.raises(ConfigError) as caught:
        config(tmp_path, overrides, files=files)
    assert message in str(caught.value)


NOT_TYPOS = [
    pytest.param("seeds: [1, 2]\n", id="setting-plus-s-is-a-parameter"),
    pytest.param("secret_key: abc\n", id="secret-key-is-a-parameter"),
    pytest.param("timeouts: [1, 2]\n", id="timeouts"),
    pytest.param("sed: 1\nfitt: 1\n", id="short-keys"),
    pytest.param("seed_offset: 3\nbackends: [a]\nfitness: 1\n", id="far-from-every-setting"),
]


@pytest.mark.parametrize("text", NOT_TYPOS)
def test_a_parameter_not_one_typo_from_a_run_setting_stays_a_parameter(tmp_path, text):
    assert config(tmp_path, files={"config.yaml": text}) == __import__("yaml").safe_load(text)


def test_n_configs_must_be_at_least_one(tmp_path):
    with pytest.raises(ConfigError, match=r"n_configs must be a whole number >= 1 \(or null for the whole grid\), got 0"):
        experiments(tmp_path, ["lr=1,2", "n_configs=0"])
