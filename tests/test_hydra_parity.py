"""Our composition and sweeps against real Hydra 1.3, case by case.

Each case is a small config tree, a primary config and a command line of
overrides, taken from Hydra's own tests (tests/test_overrides_parser.py,
tests/test_compose.py, tests/test_basic_sweeper.py, tests/defaults_list/data),
its override grammar pages and its example config trees (examples/tutorials,
examples/patterns). Hydra runs in a venv of its own (see ``hydra_reference``:
how it is made, what each side is asked, and what is left out as ours only);
where that venv cannot be made, these tests are skipped with pip's reason.

A case passes when ours composes the same config as Hydra (as written and
resolved; for a sweep, the same experiments in the same order), or when both
refuse it, ours with one of the package's errors in one line. ``hydra_error``
records which of the two Hydra does, so a change on Hydra's side shows too.

To add a case, add one line to CASES: ``value(id, text)`` for ``key=<text>``
on :data:`KEYS`, ``case(id, tree, *overrides)`` for a composition,
``sweep(id, tree, *overrides)`` for the experiments of a sweep, ``dl(id,
config_name, *overrides)`` for a primary config of :data:`DL`.
"""
import concurrent.futures
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from hydra_reference import (
    HYDRA_VERSION,
    Case,
    HydraUnavailable,
    drop_ours_only,
    hydra_outcomes,
    hydra_python,
    is_one_line,
    our_outcome,
    same,
)

# ---------------------------------------------------------------- config trees

#: Keys for the override grammar: ``key=<value>`` changes ``key``; the others are there for interpolations.
KEYS = {"config.yaml": "key: 0\nb: bee\nname: nm\na: {b: {c: abc}}\nfoo: {bar: fb}\n"}
EMPTY = {"config.yaml": "{}\n"}
SWEEP = {"config.yaml": "key: 0\nother: x\n"}
NESTED = {"config.yaml": "nested: {a: 10, b: {c: 30, d: 40}, l: [1, 2, 3]}\nlist: [a, b, c]\n"}
#: The override grammar page: "Dictionaries are merged, not assigned".
DB_NODE = {"config.yaml": "db:\n  driver: mysql\n  user: ???\n  pass: ???\n"}
#: A config group and a key of its own.
PLAIN_DB = {
    "config.yaml": "defaults:\n  - db: mysql\n  - _self_\nlr: 0.1\n",
    "db/mysql.yaml": "driver: mysql\nuser: root\n",
    "db/postgresql.yaml": "driver: postgresql\nuser: pg\n",
}
#: examples/tutorials/basic/your_first_hydra_app/3_using_config
USING_CONFIG = {"config.yaml": "node:\n  loompa: 10\n  zippity: ${node.loompa}\n  do: oompa ${node.loompa}\n  waldo: ???\n"}
#: examples/tutorials/basic/your_first_hydra_app/4_config_groups: no primary config
GROUPS_ONLY = {
    "db/mysql.yaml": "driver: mysql\nuser: omry\npassword: secret\n",
    "db/postgresql.yaml": "driver: postgresql\nuser: postgres_user\npassword: drowssap\ntimeout: 10\n",
}
#: examples/tutorials/basic/your_first_hydra_app/5_defaults
DEFAULTS = {
    "config.yaml": "defaults:\n  - db: mysql\n",
    "db/mysql.yaml": "driver: mysql\nuser: omry\npass: secret\n",
    "db/postgresql.yaml": "driver: postgresql\nuser: postgres_user\npass: drowssap\ntimeout: 10\n",
    "db/mysql/engine/innodb.yaml": "name: innodb\n",
}
#: examples/tutorials/basic/your_first_hydra_app/6_composition
COMPOSITION = {
    "config.yaml": "defaults:\n  - db: mysql\n  - ui: full\n  - schema: school\n",
    "db/mysql.yaml": "driver: mysql\nuser: omry\npass: secret\n",
    "db/postgresql.yaml": "driver: postgresql\nuser: postgres_user\npass: drowssap\ntimeout: 10\n",
    "schema/school.yaml": "database: school\ntables:\n  - name: students\n    fields: [{name: string}, {class: int}]\n",
    "schema/support.yaml": "database: support\ntables:\n  - name: users\n    fields: [{name: string}]\n",
    "schema/warehouse.yaml": "database: warehouse\ntables:\n  - name: items\n    fields: [{price: int}]\n",
    "ui/full.yaml": "windows:\n  create_db: true\n  view: true\n",
    "ui/view.yaml": "windows:\n  view: true\n",
}
#: examples/patterns/configuring_experiments
EXPERIMENTS = {
    "config.yaml": "defaults:\n  - db: mysql\n  - server: apache\n",
    "db/mysql.yaml": "name: mysql\n",
    "db/sqlite.yaml": "name: sqlite\n",
    "server/apache.yaml": "name: apache\nport: 80\n",
    "server/nginx.yaml": "name: nginx\nport: 80\n",
    "experiment/aplite.yaml": "# @package _global_\ndefaults:\n  - override /db: sqlite\n\nserver:\n  port: 8080\n",
    "experiment/nglite.yaml": "# @package _global_\ndefaults:\n  - override /server: nginx\n  - override /db: sqlite\n\nserver:\n  port: 8080\n",
}
#: examples/patterns/extending_configs
EXTENDING = {
    "config.yaml": "defaults:\n  - db: ???\n",
    "db/base_mysql.yaml": "host: localhost\nport: 3306\nuser: ???\npassword: ???\n",
    "db/mysql_extending_from_this_group.yaml": "defaults:\n  - base_mysql\n\nuser: omry\npassword: secret\nport: 3307\nencoding: utf8\n",
    "db/mysql_extending_from_another_group.yaml": "defaults:\n  - /db_schema/base_mysql@_here_\n\nuser: omry\npassword: secret\nport: 3307\nencoding: utf8\n",
    "db_schema/base_mysql.yaml": "host: localhost\nport: 3306\nuser: ???\npassword: ???\n",
}
#: examples/patterns/specializing_config
SPECIALIZING = {
    "config.yaml": "defaults:\n  - dataset: imagenet\n  - model: alexnet\n  - optional dataset_model: ${dataset}_${model}\n",
    "dataset/cifar10.yaml": "name: cifar10\npath: /datasets/cifar10\n",
    "dataset/imagenet.yaml": "name: imagenet\npath: /datasets/imagenet\n",
    "dataset_model/cifar10_alexnet.yaml": "# @package _global_\nmodel:\n  num_layers: 5\n",
    "model/alexnet.yaml": "type: alexnet\nnum_layers: 7\n",
    "model/resnet.yaml": "type: resnet\nnum_layers: 50\nwidth: 10\n",
}
#: The same, with the specialisation required rather than optional.
SPECIALIZING_REQUIRED = {
    **SPECIALIZING,
    "config.yaml": "defaults:\n  - dataset: imagenet\n  - model: alexnet\n  - dataset_model: ${dataset}_${model}\n",
    "dataset_model/imagenet_alexnet.yaml": "# @package _global_\nmodel:\n  num_layers: 8\n",
}
#: examples/patterns/multi-select
MULTI_SELECT = {
    "config.yaml": "defaults:\n  - server/apache\n",
    "server/apache.yaml": "defaults:\n  - site:\n      - fb\n      - google\n\nhost: localhost\nport: 443\n",
    "server/site/amazon.yaml": "amazon:\n  domain: amazon.com\n",
    "server/site/fb.yaml": "fb:\n  domain: facebook.com\n",
    "server/site/google.yaml": "google:\n  domain: google.com\n",
}
#: After tests/defaults_list/data: option files set ``x`` (group1), ``y`` (group2), ``z`` (group1/group2),
#: so where each lands and which wins shows; the primary configs are picked by config_name.
DL = {
    "group1/file1.yaml": "x: g1f1\n",
    "group1/file2.yaml": "x: g1f2\n",
    "group1/file3.yaml": "x: g1f3\n",
    "group1/empty.yaml": "",
    "group1/file_with_global_header.yaml": "# @package _global_\nx: g1global\n",
    "group1/file_with_group_header.yaml": "# @package _group_\nx: g1group\n",
    "group1/file_with_pkg_header_foo.yaml": "# @package foo\nx: g1foo\n",
    "group1/file_with_group_foo_header.yaml": "# @package _group_.foo\nx: g1groupfoo\n",
    "group1/file_with_name_header.yaml": "# @package _name_\nx: g1name\n",
    "group1/group_item1.yaml": "defaults:\n  - group2: file1\nx: item1\n",
    "group1/group_item1_self_first.yaml": "defaults:\n  - _self_\n  - group2: file1\nx: item1\n",
    "group1/group_item1_global_.yaml": "defaults:\n  - group2@_global_: file1\nx: item1\n",
    "group1/group_item1_pkg2.yaml": "defaults:\n  - group2@pkg2: file1\nx: item1\n",
    "group1/group_item1_abs.yaml": "defaults:\n  - /group2: file1\nx: item1\n",
    "group1/group_item1_pkg_header_foo.yaml": "# @package foo\ndefaults:\n  - group2: file1\nx: item1\n",
    "group1/config_item.yaml": "defaults:\n  - group2/file1\nx: citem\n",
    "group1/interpolation.yaml": "defaults:\n  - group2: ${group1}_ext\nx: interp\n",
    "group1/group2/file1.yaml": "z: g12f1\n",
    "group1/group2/file2.yaml": "z: g12f2\n",
    "group1/group2/interpolation_ext.yaml": "z: g12ext\n",
    "group2/file1.yaml": "y: g2f1\n",
    "group2/file2.yaml": "y: g2f2\n",
    "group1_group2/file1_file2.yaml": "w: g1f1_g2f2\n",
    "group1_group2/file1_file1.yaml": "w: g1f1_g2f1\n",
    "group1_group2/foo_file1.yaml": "w: foo_file1\n",
    "base.yaml": "x: base\nb: 1\n",
    "empty.yaml": "",
    "self_leading.yaml": "defaults:\n  - _self_\n  - group1: file1\ngroup1: {x: primary}\n",
    "self_trailing.yaml": "defaults:\n  - group1: file1\n  - _self_\ngroup1: {x: primary}\n",
    "no_self.yaml": "defaults:\n  - group1: file1\ngroup1: {x: primary}\n",
    "duplicate_self.yaml": "defaults:\n  - _self_\n  - group1: file1\n  - _self_\n",
    "group_default.yaml": "defaults:\n  - group1: file1\n",
    "two_groups.yaml": "defaults:\n  - group1: file1\n  - group2: file1\n",
    "optional_missing.yaml": "defaults:\n  - optional group1: nope\n  - group2: file1\n",
    "optional_present.yaml": "defaults:\n  - optional group1: file1\n",
    "missing_option.yaml": "defaults:\n  - group1: nope\n",
    "placeholder.yaml": "defaults:\n  - group1: null\n",
    "with_missing.yaml": "defaults:\n  - group1: ???\n",
    "group_default_pkg1.yaml": "defaults:\n  - group1@pkg1: file1\n",
    "group_default_at_global.yaml": "defaults:\n  - group1@_global_: file1\n",
    "two_pkgs.yaml": "defaults:\n  - group1@pkg1: file1\n  - group1@pkg2: file2\n",
    "global_header_option.yaml": "defaults:\n  - group1: file_with_global_header\n",
    "group_header_option.yaml": "defaults:\n  - group1: file_with_group_header\n",
    "pkg_header_option.yaml": "defaults:\n  - group1: file_with_pkg_header_foo\n",
    "group_foo_header_option.yaml": "defaults:\n  - group1: file_with_group_foo_header\n",
    "name_header_option.yaml": "defaults:\n  - group1: file_with_name_header\n",
    "primary_pkg_header_foo.yaml": "# @package foo\n\ndefaults:\n  - group1: file1\n  - group1@pkg: file1\nkey: primary\n",
    "primary_global_header.yaml": "# @package _global_\ndefaults:\n  - group1: file1\nkey: primary\n",
    "include_nested_group.yaml": "defaults:\n  - group1: group_item1\n",
    "include_nested_group_self_first.yaml": "defaults:\n  - group1: group_item1_self_first\n",
    "include_nested_group_global_.yaml": "defaults:\n  - group1: group_item1_global_\n",
    "include_nested_group_pkg2.yaml": "defaults:\n  - group1: group_item1_pkg2\n",
    "include_nested_group_abs.yaml": "defaults:\n  - group1: group_item1_abs\n",
    "include_nested_group_pkg_header_foo.yaml": "defaults:\n  - group1: group_item1_pkg_header_foo\n",
    "include_nested_config_item.yaml": "defaults:\n  - group1: config_item\n",
    "config_include.yaml": "defaults:\n  - base\n  - _self_\nx: primary\n",
    "config_include_after_self.yaml": "defaults:\n  - _self_\n  - base\nx: primary\n",
    "two_config_items.yaml": "defaults:\n  - group1/file1\n  - group1/file2\n",
    "config_default_empty.yaml": "defaults:\n  - empty\n",
    "empty_option.yaml": "defaults:\n  - group1: empty\n",
    "group_default_with_override.yaml": "defaults:\n  - group1: file1\n  - override group1: file3\n",
    "override_wrong_order.yaml": "defaults:\n  - override group1: file2\n  - group1: file1\n",
    "override_missing_group.yaml": "defaults:\n  - override group9: file1\n",
    "override_nested_group_item.yaml": "defaults:\n  - group1: group_item1\n  - override group1/group2: file2\n",
    "override_nested_to_null.yaml": "defaults:\n  - group1: group_item1\n  - override group1/group2: null\n",
    "override_hydra_launcher.yaml": "defaults:\n  - group1: file1\n  - override hydra/launcher: joblib\n",
    "changing_group.yaml": "defaults:\n  - group1: file1\n  - group1: file2\n",
    "select_multi.yaml": "defaults:\n  - group1:\n      - file1\n      - file2\n",
    "interpolation_simple.yaml": "defaults:\n  - group1: file1\n  - group2: file2\n  - group1_group2: ${group1}_${group2}\n",
    "interpolation_forward.yaml": "defaults:\n  - group1_group2: ${group1}_${group2}\n  - group1: file1\n  - group2: file2\n",
    "interpolation_nested.yaml": "defaults:\n  - group1/group2: file1\n  - group1_group2: foo_${group1/group2}\n",
    "interpolation_in_nested.yaml": "defaults:\n  - group1: interpolation\n",
    "interpolation_bad_key.yaml": "defaults:\n  - group1: file1\n  - ${not_found}\n",
    "interpolation_config_default.yaml": "defaults:\n  - group1: file1\n  - group1/group2/${group1}\n",
    "unknown_keyword.yaml": "defaults:\n  - optioal group1: file1\n",
    "defaults_not_list.yaml": "defaults:\n  group1: file1\n",
    "self_with_package.yaml": "defaults:\n  - _self_@pkg1\n",
    "top_level_list.yaml": "- a\n- b\n",
    "nested/base.yaml": "# @package _global_\na: 1\n",
    "nested/choice/two.yaml": "# @package _global_\na: 2\n",
    "nested/choice/default_package.yaml": "a: 2\n",
}
#: A hydra block in the primary config, as Hydra projects have them.
HYDRA_BLOCK = {"config.yaml": "db: {user: root}\nhydra:\n  run:\n    dir: outputs/${now:%Y-%m-%d}\n  job:\n    chdir: true\n"}
#: ``${hydra:runtime.choices.db}`` names the option chosen.
HYDRA_CHOICES = {
    "config.yaml": "defaults:\n  - db: mysql\n  - _self_\ndb_name: ${hydra:runtime.choices.db}\n",
    "db/mysql.yaml": "driver: mysql\n",
    "db/postgresql.yaml": "driver: postgresql\n",
}
#: examples/tutorials/basic/running_your_hydra_app/5_basic_sweep
BASIC_SWEEP = {
    "config.yaml": "defaults:\n  - db: ???\n  - _self_\n\nhydra:\n  sweeper:\n    params:\n      db: glob(*)\n      db.timeout: 5,10\n",
    "db/mysql.yaml": "driver: mysql\nuser: omry\npassword: secret\ntimeout: 5\n",
    "db/postgresql.yaml": "driver: postgresql\nuser: postgres_user\npassword: drowssap\ntimeout: 10\n",
}
#: The same, its sweep over db's options listed (glob() aside).
BASIC_SWEEP_LISTED = {**BASIC_SWEEP, "config.yaml": BASIC_SWEEP["config.yaml"].replace("glob(*)", "mysql,postgresql")}
#: The same with db's options as its only sweeper parameter.
BASIC_SWEEP_ONE_DIM = {**BASIC_SWEEP, "config.yaml": BASIC_SWEEP["config.yaml"].replace("      db.timeout: 5,10\n", "")}
#: ``${hydra:job.override_dirname}`` in the task's config; with a group; with Hydra's options for it.
OVERRIDE_DIRNAME = {"config.yaml": "key: 0\nother: x\nname: ${hydra:job.override_dirname}\n"}
OVERRIDE_DIRNAME_DB = {**PLAIN_DB, "config.yaml": PLAIN_DB["config.yaml"] + "name: run_${hydra:job.override_dirname}\n"}
OVERRIDE_DIRNAME_OPTIONS = {"config.yaml": OVERRIDE_DIRNAME["config.yaml"] + (
    "hydra:\n  job:\n    config:\n      override_dirname:\n        exclude_keys: [other]\n        kv_sep: '-'\n"
    "        item_sep: _\n")}
#: Shaped like the lightning-hydra-template: an option of a ``hydra`` group of the project's own chooses
#: Hydra's logging configs by relative names (colorlog's files stand in for the hydra-colorlog plugin).
LIGHTNING_TEMPLATE = {
    "train.yaml": "defaults:\n  - _self_\n  - model: mnist\n  - paths: default\n  - hydra: default\n"
                  "  - experiment: null\n  - hparams_search: null\n  - optional local: default\n  - debug: null\n\n"
                  "task_name: train\nseed: null\n",
    "model/mnist.yaml": "lr: 0.001\n",
    "experiment/example.yaml": "# @package _global_\ntask_name: example\nmodel:\n  lr: 0.002\n",
    "debug/default.yaml": "# @package _global_\ntask_name: debug\n",
    "paths/default.yaml": "root_dir: .\nlog_dir: ${paths.root_dir}/logs/\n",
    "hydra/default.yaml": "defaults:\n  - override hydra_logging: colorlog\n  - override job_logging: colorlog\n\n"
                          "run:\n  dir: ${paths.log_dir}/${task_name}/runs/${now:%Y-%m-%d}_${now:%H-%M-%S}\n"
                          "sweep:\n  dir: ${paths.log_dir}/${task_name}/multiruns/${now:%Y-%m-%d}_${now:%H-%M-%S}\n"
                          "  subdir: ${hydra.job.num}\n\njob_logging:\n  handlers:\n    file:\n"
                          "      filename: ${hydra.runtime.output_dir}/${task_name}.log\n",
    "hydra/mine.yaml": "run:\n  dir: mine\n",
    "hydra/hydra_logging/colorlog.yaml": "version: 1\n",
    "hydra/job_logging/colorlog.yaml": "version: 1\nhandlers:\n  file:\n    filename: x.log\n",
}
#: A hydra group of the project's own, not in the defaults list.
HYDRA_GROUP_ONLY = {**EMPTY, "hydra/mine.yaml": "run:\n  dir: mine\n"}
#: A value swept by the sweeper's parameters.
SWEEPER_PARAMS = {"config.yaml": "lr: 0.1\nhydra:\n  sweeper:\n    params:\n      lr: 0.1,0.2\n"}
#: The same with hydra.mode: MULTIRUN, in the primary config or in a config of its defaults list.
MODE_MULTIRUN = {"config.yaml": "lr: 0.1\na: 0\nhydra:\n  mode: MULTIRUN\n  sweeper:\n    params:\n      lr: 0.1,0.2\n"}
MODE_MULTIRUN_COMPOSED = {
    "config.yaml": "defaults:\n  - mode: multi\n  - _self_\nlr: 0.1\na: 0\nhydra:\n  sweeper:\n    params:\n"
                   "      lr: 0.1,0.2\n",
    "mode/multi.yaml": "# @package _global_\nhydra:\n  mode: MULTIRUN\n",
}
#: test_compose.py TestAdd: a group that is not in the defaults list.
UNLISTED_GROUP = {"config.yaml": "key: 0\n", "group/a0.yaml": "key: 0\n", "group/a1.yaml": "key: 1\n"}


def case(id, tree, *overrides, **options):
    return Case(id, tree, tuple(overrides), **options)


def value(id, text, **options):
    """``key=<text>`` on :data:`KEYS`: one value of the override grammar."""
    return Case(f"value-{id}", KEYS, (f"key={text}",), **options)


def sweep(id, tree, *overrides, **options):
    return Case(id, tree, tuple(overrides), sweep=True, **options)


def run(id, tree, *overrides, **options):
    """The app run without ``-m``, as ``@hydra.main`` runs it: ``hydra.mode`` decides (see Case)."""
    return Case(id, tree, tuple(overrides), run=True, **options)


def dl(id, config_name, *overrides, **options):
    """A primary config of :data:`DL` and overrides."""
    return Case(f"dl-{id}", DL, tuple(overrides), config_name=config_name, **options)


# ---------------------------------------------------------------- the cases

CASES = [
    # -- values of the override grammar (tests/test_overrides_parser.py: test_element, test_primitive, test_value)
    value("id", "abc"),
    value("idint", "abc123"),
    value("id-int", "abc-123"),
    value("ws-inside", "a b c\t-\t1 2 3"),
    value("ws-outside", " abc-123 "),
    value("int-id", "123abc"),
    value("esc-comma", r"a\,b"),
    value("esc-colon", r"a\:b"),
    value("esc-equal", r"a\=b"),
    value("esc-backslash", "ab\\\\"),
    value("esc-comma-alone", r"\,"),
    value("esc-parentheses", r"f\(a\, b\)"),
    value("esc-brackets", r"\[a\, b\]"),
    value("esc-braces", r"\{a\: b\}"),
    value("esc-interpolation", r"$\{foo.bar\}"),
    value("esc-all", "\\\\\\(\\)\\[\\]\\{\\}\\:\\=\\ \\\t\\,"),
    value("escaped-dir", r"job\{a\=1\,b\=2\,c\=3\}"),
    value("backslash-alone", "\\"),
    value("trailing-backslash", "abc\\"),
    value("interpolation-in-string", "xyz_${a.b.c}"),
    value("interpolation", "${a.b.c}"),
    value("interpolation-key", "${name}"),
    value("interpolation-missing", "${nope}", hydra_error=True),
    value("custom-resolver", "${f:USER,root}", hydra_error=True),
    value("oc-env-default", "${oc.env:EXPERIMENT_RUNNER_UNSET_VARIABLE,fallback}"),
    value("null", "null"),
    value("null-upper", "NULL"),
    value("int", "1"),
    value("int-explicit-plus", "+1"),
    value("int-zero", "0"),
    value("int-negative", "-1"),
    value("int-underscore", "10_0"),
    value("not-an-int", "1___0___"),
    value("float", "0.51"),
    value("float-zero", "0.0"),
    value("float-small", "1e-05"),
    value("float-negative", "-3.14"),
    value("float-underscore", "3.1_4"),
    value("float-exp", "10e0"),
    value("float-exp-negative", "-10e1"),
    value("float-no-leading-digit", ".5"),
    value("float-trailing-dot", "5."),
    value("inf", "inf"),
    value("inf-upper", "INF"),
    value("plus-inf", "+inf"),
    value("minus-inf", "-inf"),
    value("nan", "nan"),
    value("nan-mixed-case", "NaN"),
    value("true", "true"),
    value("true-capital", "True"),
    value("true-upper", "TRUE"),
    value("true-mixed-case", "trUe"),
    value("false", "false"),
    value("false-mixed-case", "faLse"),
    value("yes-is-a-string", "yes"),
    value("off-is-a-string", "off"),
    value("dot", "."),
    value("dotted-path", "a.b.c"),
    value("list-index-path", "list.0.bar"),
    value("int-dot-id", "0.foo"),
    value("int-then-id", "10abc"),
    value("id-float", "value-1.0"),
    value("id-bool", "value-true"),
    value("empty", ""),
    value("only-spaces", "   "),
    value("leading-trailing-ws", " \tvalue \t"),
    value("ws-in-primitive", "value \t 123"),
    value("colon-inside", "a:b"),
    value("date-is-a-string", "2020-01-01"),
    value("time-is-a-string", "10:30"),
    value("hex-is-a-string", "0x10"),
    value("unicode-quoted", "'שלום'"),
    value("bracket-quoted", '"A[B"'),
    value("bracket-escaped", r"A\[B"),
    # -- backslashes and escapes as Hydra's lexer reads them (ESC tokens, quoted values)
    value("esc-space", r"\ ab"),
    value("esc-tab", "ab\\\t"),
    value("windows-path", r"c:\foo\a-b.txt"),
    value("unquoted-specials", r"/-\+.$%*@?|"),
    value("dict-special-key", r"{/-\+.$%*@?|: 1}"),
    value("quoted-two-backslashes", r"'foo\\bar'"),
    value("quoted-four-backslashes", r"'foo\\\\bar'"),
    value("quoted-backslash-and-interpolation", r"'a \\${b}'"),
    value("left-overs", "[]aa", hydra_error=True),
    value("trailing-quote", "[1,2,3]'", hydra_error=True),
    value("open-list", "[", hydra_error=True),
    # -- what Hydra's grammar refuses: a one-line error here too
    value("url", "http://host:8080/path?q=1", hydra_error=True),
    value("unicode-unquoted", "שלום", hydra_error=True),
    value("bracket-unbalanced", "A[B", hydra_error=True),
    value("equal-sign", "a=b", hydra_error=True),
    value("paren-unescaped", "f(x)", hydra_error=True),
    value("dict-quoted-keys", "{'0a': 0, \"1b\": 1}", hydra_error=True),
    value("dict-quoted-key-single", "{' abc ': 0}", hydra_error=True),
    value("dict-quoted-key-double", '{" abc ": 0}', hydra_error=True),
    value("unknown-function", "foo(1)", hydra_error=True),
    value("extend-list-on-int", "extend_list(1,2)", hydra_error=True),
    case("key-with-spaces-around", KEYS, " key = 1", hydra_error=True),
    # -- lists (test_list_container)
    value("list", "[1,2,3]"),
    value("list-ws", "[1, 2, 3]"),
    value("list1-ws", "[1 ]"),
    value("list-empty", "[]"),
    value("list-quoted-item", "['a b']"),
    value("list-quoted-list", "['[a,b]']"),
    value("list-nested", "[[a]]"),
    value("list-double-nested", "[[[a]]]"),
    value("list-mixed", "[1,[a]]"),
    value("list-nested-doc", "[a,[b,[c]]]"),
    value("list-types", "[1, 1.5, true, null, x, '2']"),
    value("list-trailing-backslash-single", r"['a\\', 'b\\']"),
    value("list-trailing-backslash-double", r'["a\\", "b\\"]'),
    value("list-bad-escaping", r"['a\', 'b']", hydra_error=True),
    value("list-with-dict", "[{a: 1}, {b: 2}]"),
    value("list-with-interpolation", "[${name}, x]"),
    # -- dicts (test_dict_container)
    value("dict-empty", "{}"),
    value("dict", "{a:b}"),
    value("dict-int", "{a:10}"),
    value("dict-list", "{a:[a,10]}"),
    value("dict-bool-list", "{a:[true,10]}"),
    value("dict-two", "{a:10,b:20}"),
    value("dict-empty-value", "{a:10,b:{}}"),
    value("dict-nested", "{a:10,b:{c:[1,2]}}"),
    value("dict-null-key", "{null: 1}", hydra_error=True),
    value("dict-int-keys", "{123: 1, 0: 2, -1: 3}"),
    value("dict-float-keys", "{3.14: 0, 1e3: 1}"),
    value("dict-bool-keys", "{true: 1, fAlSe: 0}"),
    value("dict-escaped-key", "{\\\\\\(\\)\\[\\]\\{\\}\\:\\=\\ \\\t\\,: 1}"),
    value("dict-ws-key", "{white spaces: 1}"),
    value("dict-ws-around-key", "{ white  space\t: 2}"),
    value("dict-mixed-keys", "{a_b: 1, ab 123.5 True: 2, null false: 3, 1: 4, null: 5}", hydra_error=True),
    value("dict-key-int-plus-id", "{123id: 0}"),
    value("dict-trailing-backslash-single", r"{a: 'a\\', b: 'b\\'}"),
    value("dict-trailing-backslash-double", r'{a: "a\\", b: "b\\"}'),
    value("dict-bad-escaping", r"{a: 'a\', b: 'b'}", hydra_error=True),
    value("dict-interpolation-value", "{a: ${name}}"),
    value("dict-missing-colon", "{a}", hydra_error=True),
    # -- quoted strings (test_primitive_quoted_string)
    value("quoted-escape-single-quote", r"'foo \'bar'"),
    value("quoted-escape-double-quote", r'"foo \"bar"'),
    value("quoted-escape-single-quote-x3", r"'foo \\\'bar'"),
    value("quoted-escape-double-quote-x3", r'"foo \\\"bar"'),
    value("quoted-one-backslash-single", r"'foo\bar'"),
    value("quoted-one-backslash-double", r'"foo\bar"'),
    value("quoted-trailing-backslash", r"'foo bar\\'"),
    value("quoted-mixed-escapes", r"'foo \\\\\'bar\' \\\\\\'"),
    value("quoted-specials-single", "'\t []{},=+~'"),
    value("quoted-specials-double", '"\t []{},=+~"'),
    value("quoted-whitespace", "'a b c'"),
    value("quoted-outer-whitespace", "'  foo,bar\t'"),
    value("quoted-comma", "'a,b'"),
    value("quoted-comma-spaced", "'foo , \t\t bar'"),
    value("quoted-list", "'[1,2,3]'"),
    value("quoted-list-double", '"[1,2,3]"'),
    value("quoted-list-with-quoted-element", "\"[1,'2',3]\""),
    value("quoted-null", "'null'"),
    value("quoted-int", "'100'"),
    value("quoted-float", "'3.14'"),
    value("quoted-nan", "'nan'"),
    value("quoted-inf", "'inf'"),
    value("quoted-true", "'true'"),
    value("quoted-false", "'false'"),
    value("quoted-empty", "''"),
    value("quoted-dict", "'{a: 10}'"),
    value("quoted-doc-double", r'"escaped \"double quote\""'),
    value("quoted-doc-path", r'"the path is C:\\\"some folder\"\\"'),
    value("quoted-doc-single-path", r"'the path is C:\\\'some folder\'\\'"),
    value("quoted-doc-interpolation", "'{a:10} ${name}'"),
    value("quoted-double-in-single", "'\"double quoted string\"'"),
    value("quoted-single-in-double", "\"'single quoted string'\""),
    value("quoted-interpolation", "'a ${b}'"),
    value("quoted-esc-interpolation", r"'a \${b}'"),
    value("quoted-quotes-and-esc-interpolation", r"'a \'\${b}\''"),
    value("quoted-quotes-and-interpolation", r"'a \'${b}\''"),
    value("quoted-nested-interpolation", "'${oc.select:nope,${name}}'"),
    value("quoted-unterminated", "'abc", hydra_error=True),
    value("quoted-two-strings", "'a' 'b'", hydra_error=True),
    # -- casts and functions (test_value, test_cast_conversions, the extended grammar page)
    value("int-of-inf", "int(inf)", hydra_error=True),
    value("int-of-nan", "int(nan)", hydra_error=True),
    value("int-of-empty", "int('')", hydra_error=True),
    value("bool-of-quoted-10", "bool('10')", hydra_error=True),
    value("int-of-quoted-float", "int('10.0')", hydra_error=True),
    value("int-of-mixed-list", "int([a,1])", hydra_error=True),
    value("float-of-word", "float(foo)", hydra_error=True),
    value("function-name-as-value", "choice"),
    value("positional-after-keyword", "int(value=1,2)", hydra_error=True),
    value("interval-as-value", "interval(0,1)", hydra_error=True),
    # -- casts, sort() and shuffle() of values (test_overrides_parser.py: test_cast_conversions, test_sort, ...)
    value("int-of-float", "int(10.0)"),
    value("int-of-pi", "int(3.14)"),
    value("int-named-value", "int(value=3.14)"),
    value("str-of-float", "str(10.0)"),
    value("str-of-int", "str(10)"),
    value("bool-of-float", "bool(10.0)"),
    value("bool-of-one", "bool(1)"),
    value("bool-of-zero", "bool(0)"),
    value("float-of-int", "float(10)"),
    value("float-of-float", "float(float(10))"),
    value("str-of-list", "str([1,2,3])"),
    value("str-of-dict", "str({a:10})"),
    value("int-of-quoted", "int('10')"),
    value("float-of-quoted", "float('10.0')"),
    value("bool-of-quoted-true", "bool('true')"),
    value("bool-of-quoted-false", "bool('false')"),
    value("int-of-true", "int(true)"),
    value("float-of-false", "float(false)"),
    value("float-of-list", "float([0,1,2])"),
    value("bool-of-list", "bool([0,1,2])"),
    value("int-of-nested-list", "int([1,[2]])"),
    value("str-of-mixed-dict", "str({a:10,b:xyz})"),
    value("float-of-dict-list", "float({a:[0,1,2]})"),
    value("str-of-1e6", "str(1e6)"),
    value("int-of-1e6", "int(1e6)"),
    value("str-of-nan", "str(nan)"),
    value("cast-with-ws", "str(\t  [  1,\t2  ]\t   )"),
    value("sort-list", "sort([2,3,1])"),
    value("sort-list-reverse", "sort([2,3,1],reverse=true)"),
    value("sort-named-list-reverse", "sort(list=[1,2,3], reverse=True)"),
    value("sort-named-empty-list", "sort(list=[])"),
    value("sort-one-value", "sort(1)"),
    value("sort-dict", "sort({a:10})"),
    value("shuffle-one-item-list", "shuffle([1])"),
    value("bool-of-null", "bool(null)"),
    value("str-of-null", "str(null)", hydra_error=True),
    value("sort-quoted-list", "sort(['b','a'])", hydra_error=True),
    value("choice-of-null-as-value", "choice(null,1)", hydra_error=True),
    # -- changing, adding and deleting keys (the basic override syntax page; test_compose.py TestAdd)
    case("key-nested-set", NESTED, "nested.a=11"),
    case("key-nested-deep-set", NESTED, "nested.b.c=31"),
    case("key-list-index", NESTED, "list.0=z"),
    case("key-list-index-out-of-range", NESTED, "list.5=z", hydra_error=True),
    case("key-nested-list-index", NESTED, "nested.l.1=20"),
    case("key-list-assigned", NESTED, "nested.l=[9]"),
    case("key-dict-to-value", NESTED, "nested=5"),
    case("key-value-to-dict", KEYS, "key={x: 1}"),
    case("key-missing", KEYS, "nope=1", hydra_error=True),
    case("key-missing-nested", KEYS, "a.nope=1", hydra_error=True),
    case("key-under-value", KEYS, "key.sub=1", hydra_error=True),
    case("add", KEYS, "+new=1"),
    case("add-nested", KEYS, "+a.b.d=1"),
    case("add-deep-new-parent", KEYS, "+x.y.z=1"),
    case("add-existing", KEYS, "+key=value", hydra_error=True),
    case("add-dict", EMPTY, "+foo={a: 10}"),
    case("add-quoted-dict", EMPTY, '+foo="{a: 10}"'),
    case("add-list", EMPTY, "+top_level_list=[a]"),
    case("add-then-set", EMPTY, "+new=1", "new=2"),
    case("add-twice", EMPTY, "+new=1", "+new=2", hydra_error=True),
    case("force-add-existing", KEYS, "++key=1"),
    case("force-add-new", KEYS, "++key2=1"),
    case("force-add-nested-new", KEYS, "++a.b.e=1"),
    case("force-add-interpolation", KEYS, "++c=${name}"),
    case("set-twice", KEYS, "key=1", "key=2"),
    case("set-interpolation-to-other", USING_CONFIG, "node.loompa=11"),
    case("set-missing-value", USING_CONFIG, "node.waldo=fred"),
    case("using-config", USING_CONFIG),
    case("delete", KEYS, "~key"),
    case("delete-nested", KEYS, "~a.b.c"),
    case("delete-dict", KEYS, "~a"),
    case("delete-with-value", KEYS, "~name=nm"),
    case("delete-with-wrong-value", KEYS, "~name=other", hydra_error=True),
    case("delete-missing", KEYS, "~nope", hydra_error=True),
    case("delete-then-add", KEYS, "~key", "+key=5"),
    case("delete-with-empty-value", {"config.yaml": "x: ''\n"}, "~x="),
    case("operator-equal-equal", KEYS, "key==1", hydra_error=True),
    case("no-equal-sign", KEYS, "key", hydra_error=True),
    case("bad-key", KEYS, "a..b=1", hydra_error=True),
    case("dollar-in-group", KEYS, "$foo/bar=foobar", hydra_error=True),
    case("dash-key", EMPTY, "+a-b=1"),
    case("shell-quoted-value-doc", EMPTY, "+msg=hello world"),
    # -- dicts are merged, not assigned (the basic override syntax page)
    case("merge-dict-into-value", KEYS, "key={a: 1}"),
    # -- config groups on the command line (basic override syntax page; test_compose.py)
    case("group-default", DEFAULTS),
    case("group-select", DEFAULTS, "db=postgresql"),
    case("group-select-then-set", DEFAULTS, "db=postgresql", "db.timeout=20"),
    case("group-set-before-select", DEFAULTS, "db.timeout=20", "db=postgresql"),
    case("group-unknown-option", DEFAULTS, "db=oracle", hydra_error=True),
    case("group-not-in-defaults", UNLISTED_GROUP, "group=a0", hydra_error=True),
    case("group-append", UNLISTED_GROUP, "+group=a0"),
    case("group-append-existing", DEFAULTS, "+db=postgresql", hydra_error=True),
    case("group-delete", DEFAULTS, "~db"),
    case("group-delete-matching", DEFAULTS, "~db=mysql"),
    case("group-delete-not-matching", DEFAULTS, "~db=postgresql", hydra_error=True),
    case("group-delete-missing", UNLISTED_GROUP, "~group", hydra_error=True),
    case("group-nested-append", DEFAULTS, "+db/mysql/engine=innodb"),
    case("group-select-twice", DEFAULTS, "db=postgresql", "db=mysql"),
    case("group-value-quoted", DEFAULTS, "db='postgresql'"),
    case("composition", COMPOSITION),
    case("composition-overrides", COMPOSITION, "db=postgresql", "schema=warehouse", "ui=view"),
    case("composition-delete-group", COMPOSITION, "~ui"),
    case("composition-schema-table-set", COMPOSITION, "schema.tables.0.name=pupils"),
    case("no-primary-config-set-group", GROUPS_ONLY, "db=mysql", config_name=None, hydra_error=True),
    case("missing-primary-config", GROUPS_ONLY, config_name="nope", hydra_error=True),
    case("top-level-list-config", DL, config_name="top_level_list", hydra_error=True),
    # -- package overrides on the command line
    case("package-select-wrong-package", DL, "group1@pkg9=file2", config_name="group_default_pkg1", hydra_error=True),
    # -- defaults lists (tests/defaults_list)
    dl("self-leading", "self_leading"),
    dl("self-trailing", "self_trailing"),
    dl("no-self", "no_self"),
    dl("self-with-package", "self_with_package", hydra_error=True),
    dl("group-default", "group_default"),
    dl("group-default-override", "group_default", "group1=file2"),
    dl("group-default-delete", "group_default", "~group1"),
    dl("two-groups", "two_groups"),
    dl("optional-missing", "optional_missing"),
    dl("optional-missing-override-present", "optional_missing", "group1=file2"),
    dl("optional-present", "optional_present"),
    dl("missing-option", "missing_option", hydra_error=True),
    dl("placeholder", "placeholder"),
    dl("placeholder-selected", "placeholder", "group1=file1"),
    dl("with-missing", "with_missing", hydra_error=True),
    dl("with-missing-selected", "with_missing", "group1=file2"),
    dl("global-header-option", "global_header_option"),
    dl("pkg-header-option", "pkg_header_option"),
    dl("primary-global-header", "primary_global_header"),
    dl("nested-group", "include_nested_group"),
    dl("nested-group-override", "include_nested_group", "group1/group2=file2"),
    dl("nested-group-self-first", "include_nested_group_self_first"),
    dl("nested-config-item", "include_nested_config_item"),
    dl("config-include", "config_include"),
    dl("config-include-after-self", "config_include_after_self"),
    dl("two-config-items", "two_config_items"),
    dl("config-default-empty", "config_default_empty"),
    dl("empty-option", "empty_option"),
    dl("override-wrong-order", "override_wrong_order", hydra_error=True),
    dl("override-missing-group", "override_missing_group", hydra_error=True),
    dl("changing-group", "changing_group", hydra_error=True),
    dl("interpolation-simple-override", "interpolation_simple", "group2=file1", "group1_group2=file1_file1"),
    dl("interpolation-bad-key", "interpolation_bad_key", hydra_error=True),
    dl("unknown-keyword", "unknown_keyword"),
    dl("defaults-not-a-list", "defaults_not_list", hydra_error=True),
    # -- Hydra's example config trees (examples/tutorials, examples/patterns)
    case("experiment-none", EXPERIMENTS),
    case("extending-this-group", EXTENDING, "db=mysql_extending_from_this_group"),
    case("extending-missing-db", EXTENDING, hydra_error=True),
    case("specializing-default", SPECIALIZING),
    case("specializing-other-model", SPECIALIZING, "dataset=cifar10", "model=resnet"),
    case("specializing-required-no-match", SPECIALIZING_REQUIRED, "model=resnet", hydra_error=True),
    # -- interpolated defaults entries, resolved from the options chosen (tests/defaults_list, examples/patterns)
        dl("interpolation-simple", "interpolation_simple"),
        dl("interpolation-simple-other-match", "interpolation_simple", "group2=file1"),
        dl("interpolation-forward", "interpolation_forward"),
        dl("interpolation-nested", "interpolation_nested"),
        dl("interpolation-in-nested", "interpolation_in_nested"),
        dl("interpolation-config-default", "interpolation_config_default"),
        case("specializing-match", SPECIALIZING, "dataset=cifar10"),
        case("specializing-required", SPECIALIZING_REQUIRED),
        sweep("group-sweep-specializing", SPECIALIZING, "dataset=imagenet,cifar10", "model=alexnet,resnet"),
    # -- package headers: on the primary config, on options with a defaults list; _group_/_name_ literal
        dl("group-header-option", "group_header_option"),
        dl("group-foo-header-option", "group_foo_header_option"),
        dl("name-header-option", "name_header_option"),
        dl("primary-pkg-header", "primary_pkg_header_foo"),
        dl("nested-group-pkg-header", "include_nested_group_pkg_header_foo"),
    # -- what Hydra refuses in composition
        case("group-force-add", UNLISTED_GROUP, "++group=a1", hydra_error=True),
        case("group-force-add-existing", DEFAULTS, "++db=postgresql", hydra_error=True),
        case("group-null", DEFAULTS, "db=null", hydra_error=True),
        case("nested-primary-config-add-global", DL, "+nested/choice=two", config_name="nested/base", hydra_error=True),
        case("nested-primary-config-default-package", DL, "+nested/choice=default_package", config_name="nested/base", hydra_error=True),
        dl("duplicate-self", "duplicate_self", hydra_error=True),
    # -- override entries, +experiment=, _here_, group@pkg, _global_, multi-select
        case("group-list-value", DEFAULTS, "db=[mysql]"),
        case("package-select", DL, "group1@pkg1=file2", config_name="group_default_pkg1"),
        case("package-add", DL, "+group2@foo=file1", config_name="group_default"),
        case("package-add-global", DL, "+group2@_global_=file1", config_name="group_default"),
        case("package-add-empty", DL, "+group2@=file1", config_name="group_default"),
        case("package-select-one-of-two", DL, "group1@pkg2=file3", config_name="two_pkgs"),
        case("package-delete-one-of-two", DL, "~group1@pkg1", config_name="two_pkgs"),
        case("package-name-literal", DL, "+group2@_name_=file1", config_name="group_default"),
        dl("group-at-pkg1", "group_default_pkg1"),
        dl("group-at-global", "group_default_at_global"),
        dl("two-packages", "two_pkgs"),
        dl("nested-group-global", "include_nested_group_global_"),
        dl("nested-group-pkg2", "include_nested_group_pkg2"),
        dl("nested-group-absolute", "include_nested_group_abs"),
        dl("override-in-defaults", "group_default_with_override"),
        dl("override-in-defaults-and-command-line", "group_default_with_override", "group1=file2"),
        dl("override-nested-group-item", "override_nested_group_item"),
        dl("override-nested-to-null", "override_nested_to_null"),
        dl("select-multi", "select_multi"),
        dl("select-multi-override", "select_multi", "group1=[file3]"),
        case("experiment-aplite", EXPERIMENTS, "+experiment=aplite"),
        case("experiment-nglite", EXPERIMENTS, "+experiment=nglite"),
        case("experiment-and-override", EXPERIMENTS, "+experiment=nglite", "server.port=9090"),
        case("experiment-then-group", EXPERIMENTS, "+experiment=aplite", "db=mysql"),
        case("extending-another-group", EXTENDING, "db=mysql_extending_from_another_group"),
        case("multi-select", MULTI_SELECT),
        case("multi-select-override", MULTI_SELECT, "server/site=[google,amazon]"),
        case("multi-select-add", MULTI_SELECT, "server/site=[fb,google,amazon]"),
        sweep("group-sweep-experiments", EXPERIMENTS, "+experiment=aplite,nglite"),
    # -- no primary config
        case("no-primary-config", GROUPS_ONLY, config_name=None),
        case("no-primary-config-add-group", GROUPS_ONLY, "+db=postgresql", config_name=None),
        case("no-primary-config-add-key", GROUPS_ONLY, "+foo=bar", config_name=None),
    # -- the hydra node and Hydra's own settings
    case("hydra-unknown-key", KEYS, "hydra.foo=bar", hydra_error=True),
    case("hydra-unknown-logging-key", KEYS, "hydra.job_logging.foo=bar", hydra_error=True),
    case("hydra-launcher-unknown", KEYS, "hydra/launcher=nope", hydra_error=True),
    case("hydra-sweeper-params-override", KEYS, "hydra.sweeper.params={key: '1,2'}", hydra_error=True),
    case("hydra-node-interpolation", KEYS, "key=${hydra.job.name}", hydra_error=True),
    # -- sweeps: the jobs of a multirun (test_basic_sweeper.py, the override grammar pages)
    sweep("sweep-none", SWEEP),
    sweep("sweep-one-value", SWEEP, "key=10"),
    sweep("sweep-split", SWEEP, "key=10,20"),
    sweep("sweep-not-split-list", SWEEP, "key=[10,20]"),
    sweep("sweep-lists", SWEEP, "key=[a,b,c],[d,e,f]"),
    sweep("sweep-two-dims", SWEEP, "key=1,2", "other=10,11"),
    sweep("sweep-two-dims-reversed", SWEEP, "other=10,11", "key=1,2"),
    sweep("sweep-group-then-value", PLAIN_DB, "db=mysql,postgresql", "lr=1,2"),
    sweep("sweep-value-then-group", PLAIN_DB, "lr=1,2", "db=mysql,postgresql"),
    sweep("sweep-three-dims-mixed", {"config.yaml": "a: 0\nb: {c: 0}\nd: 0\n"}, "d=1,2", "b.c=3,4", "a=5,6"),
    sweep("sweep-add-new-key", SWEEP, "+new=a,b"),
    sweep("sweep-force-add", SWEEP, "++new=a,b"),
    sweep("sweep-types", SWEEP, "key=a,10,3.14,true,null"),
    sweep("sweep-ws", SWEEP, "key=1, 2, 3"),
    sweep("sweep-ws-around-commas", SWEEP, "key=1 ,  2,\t\t3"),
    sweep("sweep-quoted", SWEEP, 'key="a,b","c,d"'),
    sweep("sweep-dicts", SWEEP, "key={a:10, b:20},{c:30,d:40}"),
    sweep("sweep-lists-ws", SWEEP, "key=[1  ,\t2\t],[\t3\t   ,4  ]"),
    sweep("choice-one", SWEEP, "key=choice(a)"),
    sweep("choice", SWEEP, "key=choice(a,b)"),
    sweep("choice-ws", SWEEP, "key=choice( 10 , 20 )"),
    sweep("choice-many-ws", SWEEP, "key=choice(\t\t1,   2, \t 3 )"),
    sweep("choice-lists", SWEEP, "key=choice([1,2],[3,4])"),
    sweep("choice-of-lists-mixed", SWEEP, "key=choice([1, 1.1, '2', 'a'], [True, False])"),
    sweep("choice-empty", SWEEP, "key=choice()", hydra_error=True),
    sweep("range-one", SWEEP, "key=range(10,11)"),
    sweep("range-step", SWEEP, "key=range(1,10,2)"),
    sweep("range-floats", SWEEP, "key=range(1.0, 3.14)"),
    sweep("range-stop-only", SWEEP, "key=range(10)"),
    sweep("range-negative-step", SWEEP, "key=range(2,0,-1)"),
    sweep("range-negative-float-step", SWEEP, "key=range(10.0,5.0,-2)"),
    sweep("range-doc", SWEEP, "key=range(0,5)"),
    sweep("range-doc-step", SWEEP, "key=range(0,5,2)"),
    sweep("range-half-step", SWEEP, "key=range(0,2,0.5)"),
    sweep("range-zero-step", SWEEP, "key=range(0,5,0)", hydra_error=True),
    sweep("range-positional-after-keyword", SWEEP, "key=range(start=10,20,1)", hydra_error=True),
    sweep("range-two-dims", SWEEP, "key=range(0,3)", "other=range(0,3)"),
    # -- function names before '(' with whitespace, float ranges stepped exactly
    sweep("choice-space-before-paren", SWEEP, "key=choice (a,b)"),
    sweep("choice-tab-ws", SWEEP, "key=choice\t(  1\t\t )"),
    sweep("range-space-before-paren", SWEEP, "key=range (10,11)"),
    sweep("range-floats-step", SWEEP, "key=range(1.0, 3.14, 0.1)"),
    sweep("range-stop-only-float", SWEEP, "key=range(5.5)"),
    sweep("range-doc-float-step", SWEEP, "key=range(0,10,3.3)"),
    # -- range() keywords, casts, sort(), shuffle(), tag() and glob() of sweeps; typed again as Hydra's jobs read them
    sweep("range-named", SWEEP, "key=range(start=1,stop=10,step=2)"),
    sweep("range-named-mixed", SWEEP, "key=range(10,step=5,stop=20)"),
    sweep("range-stop-only-float-step", SWEEP, "key=range(5.5, step=0.5)"),
    sweep("range-negative-step-named", SWEEP, "key=range(-5,step=-1)"),
    sweep("sort-simple", SWEEP, "key=sort(3,2,1)"),
    sweep("sort-reverse", SWEEP, "key=sort(a,c,b,reverse=true)"),
    sweep("sort-float-cast", SWEEP, "key=float(sort(3,2,1))"),
    sweep("sort-of-cast", SWEEP, "key=sort(float(3,2,1))"),
    sweep("sort-choice", SWEEP, "key=sort(choice(1,2,3), reverse=True)"),
    sweep("sort-named-sweep", SWEEP, "key=sort(sweep=choice(1,2,3))"),
    sweep("sort-range-down", SWEEP, "key=sort(range(9,0,-1))"),
    sweep("sort-range-reverse", SWEEP, "key=sort(range(1,10),reverse=True)"),
    sweep("sort-float-range", SWEEP, "key=sort(range(0,2,0.5))"),
    sweep("sort-float-range-down", SWEEP, "key=sort(range(1.5,-0.5,-0.5))"),
    sweep("sort-range-non-landing", SWEEP, "key=sort(range(0,5,2),reverse=True)"),
    sweep("shuffle-simple", SWEEP, "key=shuffle(1,2,3)", unordered=True),
    sweep("shuffle-choice", SWEEP, "key=shuffle(choice(1,2,3))", unordered=True),
    sweep("shuffle-range", SWEEP, "key=shuffle(range(1,10))", unordered=True),
    sweep("cast-range-float", SWEEP, "key=float(range(1,4))"),
    sweep("cast-range-int", SWEEP, "key=int(range(1.0,4.0))"),
    sweep("cast-choice-str", SWEEP, "key=str(choice(0,1))"),
    sweep("cast-choice-bool", SWEEP, "key=bool(choice(0,1))"),
    sweep("cast-choice-float", SWEEP, "key=float(choice(0,1))"),
    sweep("cast-simple-sweep-int", SWEEP, "key=int(1.5,2.5)"),
    sweep("tag-choice", SWEEP, "key=tag(a,b,choice(1,2))"),
    sweep("tag-sweep-keyword-only", SWEEP, "key=tag(sweep=range(1,3))", hydra_error=True),
    sweep("choice-from-quoted-non-ascii", SWEEP, "key=choice('שלום',x)", hydra_error=True),
    sweep("quoted-non-ascii-simple-sweep", SWEEP, "key='שלום',x"),
    sweep("glob-all", COMPOSITION, "schema=glob(*)"),
    sweep("glob-exclude", COMPOSITION, "schema=glob(*,exclude=support)"),
    sweep("glob-include-list", COMPOSITION, "schema=glob([s*,w*],exclude=school)"),
    sweep("glob-named", COMPOSITION, "schema=glob(include=[a*, s*], exclude=sc*)"),
    sweep("choice-of-str", SWEEP, "key=choice(str(10))"),
    sweep("sort-mixed-types", SWEEP, "key=sort(3,2,str(1))", hydra_error=True),
    sweep("cast-choice-word-int", SWEEP, "key=int(choice(a,b))", hydra_error=True),
    sweep("interval", SWEEP, "key=interval(0,1)", hydra_error=True),
    sweep("tag-interval", SWEEP, "key=tag(log,interval(0,1))", hydra_error=True),
    sweep("group-sweep", DEFAULTS, "db=mysql,postgresql"),
    sweep("group-sweep-and-value", DEFAULTS, "db=mysql,postgresql", "+db.port=1,2"),
    sweep("value-then-group-sweep", COMPOSITION, "ui=full,view", "db=mysql,postgresql"),
    sweep("group-sweep-choice", DEFAULTS, "db=choice(postgresql,mysql)"),
    sweep("group-sweep-add", UNLISTED_GROUP, "+group=a0,a1"),
    sweep("sweep-with-interpolation-following", {"config.yaml": "lr: 0.1\nname: run_${lr}\n"}, "lr=0.1,0.01"),
    sweep("sweep-project-seed", {"config.yaml": "key: 0\nseed: 0\n"}, "seed=1,2"),
    sweep("sweep-project-seed-kept", {"config.yaml": "seed: 42\nlr: 0.1\n"}, "lr=0.1,0.01"),
    case("project-run-setting-names", {"config.yaml": "seed: 42\ntimeout: 30\nverbose: false\nlr: 0.1\n"}),
    sweep("sweep-hydra-params-override", SWEEP, "hydra.sweeper.params={key: '1,2'}", hydra_error=True),
    sweep("sweep-duplicate-key", SWEEP, "key=1,2", "key=3"),
    # dict overrides merge into dict nodes; a node keeps its kind (list or dict)
    case("merge-dict-docs", DB_NODE, "db={user:root,pass:1234}"),
    case("merge-dict-partial", DB_NODE, "db={user:root}"),
    case("merge-dict-new-key", DB_NODE, "db={port: 3306}", hydra_error=True),
    case("merge-dict-force-add", DB_NODE, "++db={user:root}"),
    case("merge-dict-add-existing", DB_NODE, "+db={user:root}"),
    case("merge-dict-nested", NESTED, "nested={a:11,b:{c:31}}"),
    case("merge-dict-empty", NESTED, "nested={}"),
    case("merge-dict-into-group-node", PLAIN_DB, "db={user:admin}"),
    case("merge-dict-list-value-assigned", NESTED, "nested={l: [7]}"),
    case("key-list-to-dict", NESTED, "list={a: 1}", hydra_error=True),
    case("key-dict-to-list", NESTED, "nested=[1, 2]", hydra_error=True),
    case("delete-list-item", NESTED, "~list.0", hydra_error=True),
    # -- the hydra node, Hydra's settings and the ${hydra:...} resolver
    case("hydra-block-in-config", HYDRA_BLOCK),
    sweep("sweep-hydra-params-add", SWEEP, "+hydra.sweeper.params.key='1,2'", hydra_error=True),
    dl("override-hydra-launcher", "override_hydra_launcher"),
    case("hydra-run-dir", KEYS, "hydra.run.dir=outputs/x"),
    case("hydra-sweep-dir", KEYS, "hydra.sweep.dir=multirun/${now:%Y-%m-%d}"),
    case("hydra-job-chdir", KEYS, "hydra.job.chdir=True"),
    case("hydra-verbose", KEYS, "hydra.verbose=true"),
    case("hydra-launcher-joblib", KEYS, "hydra/launcher=joblib"),
    case("hydra-launcher-joblib-setting", KEYS, "hydra/launcher=joblib", "hydra.launcher.n_jobs=4"),
    case("hydra-launcher-submitit", KEYS, "hydra/launcher=submitit_slurm"),
    case("hydra-launcher-basic", KEYS, "hydra/launcher=basic"),
    sweep("sweep-hydra-params-in-config", BASIC_SWEEP),
    sweep("sweep-hydra-params-and-command-line", BASIC_SWEEP, "db=mysql"),
    sweep("sweep-hydra-params-listed", BASIC_SWEEP_LISTED),
    case("dollar-key", EMPTY, "+$foo=1"),
    # the header is the comment lines starting with `# @` before any other line, each `# @key value`
    case("header-after-a-comment", {"config.yaml": "defaults:\n  - db: mysql\n",
                                    "db/mysql.yaml": "# the database\n# @package _global_\nhost: h\n"}),
    case("header-after-blank-lines", {"config.yaml": "defaults:\n  - db: mysql\n",
                                      "db/mysql.yaml": "\n\n# @package _global_\nhost: h\n"}),
    case("header-with-other-keys", {"config.yaml": "defaults:\n  - db: mysql\n",
                                    "db/mysql.yaml": "# @foo bar\n#@package  backup\nhost: h\n"}),
    case("header-empty-package", {"config.yaml": "defaults:\n  - db: mysql\n",
                                  "db/mysql.yaml": "# @package\nhost: h\n"}, hydra_error=True),
    case("header-two-packages", {"config.yaml": "defaults:\n  - db: mysql\n",
                                 "db/mysql.yaml": "# @package a b\nhost: h\n"}, hydra_error=True),
    sweep("sweep-hydra-params-listed-and-command-line", BASIC_SWEEP_LISTED, "db=mysql"),
    # the command line changes the sweeper's parameters of a config that cannot compose without them
    sweep("sweep-hydra-param-changed", BASIC_SWEEP, "hydra.sweeper.params.db=postgresql"),
    sweep("sweep-hydra-param-changed-one-dim", BASIC_SWEEP_ONE_DIM, "hydra.sweeper.params.db=postgresql"),
    sweep("sweep-hydra-param-changed-and-group", BASIC_SWEEP, "hydra.sweeper.params.db=postgresql", "db=mysql"),
    sweep("sweep-hydra-params-merged", BASIC_SWEEP, "hydra.sweeper.params={db: mysql}"),
    sweep("sweep-hydra-param-deleted", BASIC_SWEEP, "~hydra.sweeper.params.db", hydra_error=True),
    sweep("sweep-hydra-param-below-value", BASIC_SWEEP, "hydra.sweeper.params.db.timeout=7", hydra_error=True),
    sweep("sweep-hydra-param-below-value-and-group", BASIC_SWEEP, "hydra.sweeper.params.db.timeout=7", "db=mysql",
          hydra_error=True),
    sweep("sweep-hydra-params-deleted", BASIC_SWEEP, "~hydra.sweeper.params", hydra_error=True),
    sweep("sweep-hydra-param-swept", BASIC_SWEEP, "hydra.sweeper.params.db=mysql,postgresql", hydra_error=True),
    case("hydra-setting-deleted", KEYS, "~hydra.verbose", hydra_error=True),
    sweep("hydra-sweeper-basic", SWEEP, "hydra/sweeper=basic", "key=1,2"),
    # each job of a sweep has its own ${hydra:job.override_dirname}
    sweep("override-dirname-sweep", OVERRIDE_DIRNAME, "key=1,2"),
    sweep("override-dirname-sweep-and-value", OVERRIDE_DIRNAME, "key=1,2", "other=a"),
    sweep("override-dirname-sweep-range-and-equals", OVERRIDE_DIRNAME, "key=range(0,3)", r"other=a\=b"),
    sweep("override-dirname-sweep-typed", OVERRIDE_DIRNAME, "key=[1,2],null,true,x y", "+new=3"),
    sweep("override-dirname-group-and-value", OVERRIDE_DIRNAME_DB, "db=mysql,postgresql", "lr=1,3"),
    sweep("override-dirname-group", OVERRIDE_DIRNAME_DB, "db=mysql,postgresql"),
    sweep("override-dirname-excluded-keys-and-separators", OVERRIDE_DIRNAME_OPTIONS, "key=1,2", "other=a,b"),
    sweep("override-dirname-sweeper-params", BASIC_SWEEP_LISTED, "+name=${hydra:job.override_dirname}"),
    # Hydra's settings are no part of it; ours (backend=, out_path=) neither: test_override_dirname.py
    sweep("override-dirname-launcher-and-sweep-dir", OVERRIDE_DIRNAME, "key=1,2", "hydra/launcher=joblib",
          "hydra.launcher.n_jobs=1", "hydra.sweep.dir=multirun/od"),
    sweep("hydra-sweeper-not-installed", SWEEP, "hydra/sweeper=optuna", "key=1,2", hydra_error=True),
    case("hydra-choices-resolver", HYDRA_CHOICES),
    case("hydra-choices-resolver-override", HYDRA_CHOICES, "db=postgresql"),
    case("hydra-job-name-resolver", KEYS, "key=${hydra:job.name}"),
    case("hydra-runtime-choices-node", HYDRA_CHOICES, "+all=${hydra:runtime.choices}"),
    # -- a project's own option of the hydra group (lightning-hydra-template)
    case("template", LIGHTNING_TEMPLATE, config_name="train"),
    case("template-experiment", LIGHTNING_TEMPLATE, "experiment=example", "debug=default", config_name="train"),
    case("template-logging-choice", LIGHTNING_TEMPLATE, "+choice=${hydra:runtime.choices.hydra/job_logging}",
         config_name="train"),
    case("template-hydra-option", LIGHTNING_TEMPLATE, "hydra=default", config_name="train"),
    case("template-hydra-other-option", LIGHTNING_TEMPLATE, "hydra=mine", config_name="train"),
    case("template-hydra-add-twice", LIGHTNING_TEMPLATE, "+hydra=mine", config_name="train", hydra_error=True),
    case("hydra-option-not-in-defaults", HYDRA_GROUP_ONLY, "hydra=mine", hydra_error=True),
    case("hydra-option-added", HYDRA_GROUP_ONLY, "+hydra=mine"),
    case("hydra-option-without-group", EMPTY, "hydra=mine", hydra_error=True),
    # -- the sweeper's parameters: a sweep in Hydra's multirun, nothing in a composition
    case("sweeper-params-compose", SWEEPER_PARAMS),
    sweep("sweeper-params-multirun", SWEEPER_PARAMS),
    sweep("sweeper-params-multirun-overridden", SWEEPER_PARAMS, "lr=0.5"),
    # -- hydra.mode: MULTIRUN (typed, or in a config) is -m; RUN is a plain run, and -m wins over it
    run("mode-none", SWEEPER_PARAMS),
    run("mode-run", SWEEPER_PARAMS, "hydra.mode=RUN"),
    run("mode-multirun-typed", SWEEPER_PARAMS, "hydra.mode=MULTIRUN"),
    run("mode-multirun-typed-and-overridden", SWEEPER_PARAMS, "hydra.mode=MULTIRUN", "lr=0.5"),
    run("mode-multirun-typed-and-swept", SWEEPER_PARAMS, "hydra.mode=MULTIRUN", "+a=1,2"),
    run("mode-multirun-in-config", MODE_MULTIRUN),
    run("mode-multirun-in-config-and-swept", MODE_MULTIRUN, "a=1,2"),
    run("mode-multirun-in-composed-config", MODE_MULTIRUN_COMPOSED, "a=1,2"),
    run("mode-run-typed-over-config", MODE_MULTIRUN, "hydra.mode=RUN"),
    run("mode-lowercase", SWEEPER_PARAMS, "hydra.mode=multirun", hydra_error=True),
    run("mode-unknown", SWEEPER_PARAMS, "hydra.mode=parallel", hydra_error=True),
    sweep("mode-run-with-multirun-flag", SWEEPER_PARAMS, "hydra.mode=RUN"),
    sweep("mode-run-in-config-with-multirun-flag", MODE_MULTIRUN, "hydra.mode=RUN", "a=1,2"),
    # -- seed swept on a config without one: Hydra cannot override a key that is not there (+seed=1,2 adds it)
    sweep("seed-swept-without-key", SWEEP, "seed=1,2", hydra_error=True),
    sweep("seed-range-without-key", SWEEP, "seed=range(2)", "key=1,2", hydra_error=True),
    sweep("seed-added-and-swept", SWEEP, "+seed=1,2"),
    sweep("seed-swept-in-config", {"config.yaml": "seed: 0\nkey: 1\n"}, "seed=1,2", "key=1,2"),
]


#: Where ours differs from Hydra on purpose (README, "Coming from Hydra"): each case with Hydra's
#: outcome checked, and ours: ``("jobs", n)`` (its number of experiments) or ``("refuses", words of its line)``.
DELIBERATE = [
    # an empty sweep is most likely a mistake: one line, where Hydra launches no job
    (sweep("range-empty", SWEEP, "key=range(-10)"), ("refuses", "the range is empty, so no experiment would run")),
    (sweep("glob-on-value", SWEEP, "key=glob(*)"), ("refuses", "glob() selects options of a config group")),
    # identical configurations are one experiment (repetitions=N repeats it); Hydra launches a job per value
    (sweep("sweep-interpolations", SWEEP, "key=${other},x"), ("jobs", 1)),
    (sweep("choice-mixed-types", SWEEP, "key=choice(True, 'True', False, 'False', 'a', 1, 1.1, 2.0, 3, '1.5', '4')"),
     ("jobs", 9)),
    # timeout is a run setting: it stops each experiment after 30 s and is no parameter of the stages
    (sweep("sweep-project-timeout-kept", {"config.yaml": "timeout: 30\nlr: 0.1\n"}, "lr=0.1,0.01"), ("jobs", 2)),
]


#: Hydra's answers being worked out in the background since the session started (see conftest.py).
_PREPARED: List["concurrent.futures.Future[Dict[str, Any]]"] = []


def prepare_hydra_answers(root: Path) -> None:
    """Start working out Hydra's answers now, in a thread and one Hydra process, while the tests before these run.

    On a fresh machine that is a minute (the venv, then every case); it
    overlaps the tests that wait on servers and processes instead of adding
    to the session.
    """
    future: "concurrent.futures.Future[Dict[str, Any]]" = concurrent.futures.Future()

    def work() -> None:
        try:
            future.set_result(_answers(root, processes=1))
        except BaseException as error:  # handed to the fixture, which raises or skips it
            future.set_exception(error)

    threading.Thread(target=work, name="hydra-answers", daemon=True).start()  # a Ctrl-C'd session does not wait
    _PREPARED.append(future)


def _answers(root: Path, processes: Optional[int] = None) -> Dict[str, Any]:
    cases = CASES + [case for case, _ in DELIBERATE]
    return hydra_outcomes(cases, root, hydra_python(), processes)


@pytest.fixture(scope="session")
def hydra_answers(tmp_path_factory):
    """Hydra's outcome of every case: id -> (config dir, outcome)."""
    try:
        if _PREPARED:
            return _PREPARED[0].result()
        return _answers(tmp_path_factory.mktemp("hydra-parity"))
    except HydraUnavailable as error:
        pytest.skip(f"no Hydra {HYDRA_VERSION} to compare with: {error}")


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_same_as_hydra(case, hydra_answers):
    config_dir, hydra = hydra_answers[case.id]
    now = "refuses" if hydra.failed else "accepts"
    assert hydra.failed == case.hydra_error, f"the table says otherwise, but Hydra {now} it: {hydra.describe()}"
    ours = drop_ours_only(our_outcome(case, config_dir), hydra)
    if hydra.failed:
        assert is_one_line(ours), f"Hydra refuses it ({hydra.describe()}); ours: {ours.describe()}"
    else:
        assert same(ours, hydra, case), f"\nHydra: {hydra.describe()}\nours:  {ours.describe()}"


@pytest.mark.parametrize("case, ours_expected", DELIBERATE, ids=[case.id for case, _ in DELIBERATE])
def test_deliberately_different_from_hydra(case, ours_expected, hydra_answers):
    config_dir, hydra = hydra_answers[case.id]
    ours = drop_ours_only(our_outcome(case, config_dir), hydra)
    assert not same(ours, hydra, case), f"ours agrees with Hydra now: move {case.id} into CASES"
    kind, expected = ours_expected
    if kind == "refuses":
        assert is_one_line(ours) and expected in ours.refusal["message"], ours.describe()
    else:
        assert not ours.failed and len(ours.jobs) == expected, ours.describe()
