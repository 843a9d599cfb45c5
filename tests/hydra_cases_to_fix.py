"""Cases where experiment-runner composes differently from Hydra 1.3 today: issue 12's work list.

Measured against real hydra-core 1.3.8 with tests/hydra_reference.py, like the
cases of test_hydra_parity.CASES, and grouped by the numbered points of issue
12. Each entry is in that table's format: once our composition agrees with
Hydra on a case, move its line into CASES (with the tree it uses, if that tree
is defined here). Nothing here is collected as a test.
"""
from test_hydra_parity import *  # noqa: F401,F403  (the trees and the case helpers)

# The trees these cases use that test_hydra_parity does not define.
#: examples/tutorials/basic/running_your_hydra_app/5_basic_sweep
BASIC_SWEEP = {
    "config.yaml": "defaults:\n  - db: ???\n  - _self_\n\nhydra:\n  sweeper:\n    params:\n      db: glob(*)\n      db.timeout: 5,10\n",
    "db/mysql.yaml": "driver: mysql\nuser: omry\npassword: secret\ntimeout: 5\n",
    "db/postgresql.yaml": "driver: postgresql\nuser: postgres_user\npassword: drowssap\ntimeout: 10\n",
}
#: examples/patterns/multi-select
MULTI_SELECT = {
    "config.yaml": "defaults:\n  - server/apache\n",
    "server/apache.yaml": "defaults:\n  - site:\n      - fb\n      - google\n\nhost: localhost\nport: 443\n",
    "server/site/amazon.yaml": "amazon:\n  domain: amazon.com\n",
    "server/site/fb.yaml": "fb:\n  domain: facebook.com\n",
    "server/site/google.yaml": "google:\n  domain: google.com\n",
}
#: A hydra block in the primary config, as Hydra projects have them.
HYDRA_BLOCK = {"config.yaml": "db: {user: root}\nhydra:\n  run:\n    dir: outputs/${now:%Y-%m-%d}\n  job:\n    chdir: true\n"}
#: ``${hydra:runtime.choices.db}`` names the option chosen.
HYDRA_CHOICES = {
    "config.yaml": "defaults:\n  - db: mysql\n  - _self_\ndb_name: ${hydra:runtime.choices.db}\n",
    "db/mysql.yaml": "driver: mysql\n",
    "db/postgresql.yaml": "driver: postgresql\n",
}

CASES_TO_FIX = {
    # 1. A dict override on an existing dict node merges (`db={...}`, `+db={...}`, `++db={...}`)
    '1': [
    ],
    # 2. The `hydra:` node is never part of the experiment's config
    '2': [
        case("hydra-block-in-config", HYDRA_BLOCK),
        sweep("sweep-hydra-params-add", SWEEP, "+hydra.sweeper.params.key='1,2'", hydra_error=True),
    ],
    # 3. Interpolated defaults entries (`- optional dataset_model: ${dataset}_${model}`)
    '3': [
        dl("interpolation-simple", "interpolation_simple"),
        dl("interpolation-simple-other-match", "interpolation_simple", "group2=file1"),
        dl("interpolation-forward", "interpolation_forward"),
        dl("interpolation-nested", "interpolation_nested"),
        dl("interpolation-in-nested", "interpolation_in_nested"),
        dl("interpolation-config-default", "interpolation_config_default"),
        case("specializing-match", SPECIALIZING, "dataset=cifar10"),
        case("specializing-required", SPECIALIZING_REQUIRED),
        sweep("group-sweep-specializing", SPECIALIZING, "dataset=imagenet,cifar10", "model=alexnet,resnet"),
    ],
    # 4. Backslashes and escapes follow Hydra's rules
    '4': [
        value("esc-space", r"\ ab"),
        value("esc-tab", "ab\\\t"),
        value("windows-path", r"c:\foo\a-b.txt"),
        value("unquoted-specials", r"/-\+.$%*@?|"),
        value("dict-special-key", r"{/-\+.$%*@?|: 1}"),
        value("quoted-two-backslashes", r"'foo\\bar'"),
        value("quoted-four-backslashes", r"'foo\\\\bar'"),
        value("quoted-backslash-and-interpolation", r"'a \\${b}'"),
    ],
    # 5. `choice (a,b)` / `range (1,3)`, float ranges
    '5': [
        sweep("choice-space-before-paren", SWEEP, "key=choice (a,b)"),
        sweep("choice-tab-ws", SWEEP, "key=choice\t(  1\t\t )"),
        sweep("range-space-before-paren", SWEEP, "key=range (10,11)"),
        sweep("range-floats-step", SWEEP, "key=range(1.0, 3.14, 0.1)"),
        sweep("range-stop-only-float", SWEEP, "key=range(5.5)"),
        sweep("range-doc-float-step", SWEEP, "key=range(0,10,3.3)"),
    ],
    # 6. `# @package` on the primary config and on options with their own defaults; `_group_`/`_name_` are literal
    '6': [
        dl("group-header-option", "group_header_option"),
        dl("group-foo-header-option", "group_foo_header_option"),
        dl("name-header-option", "name_header_option"),
        dl("primary-pkg-header", "primary_pkg_header_foo"),
        dl("nested-group-pkg-header", "include_nested_group_pkg_header_foo"),
    ],
    # 7. Reject what Hydra rejects
    '7': [
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
        case("group-force-add", UNLISTED_GROUP, "++group=a1", hydra_error=True),
        case("group-force-add-existing", DEFAULTS, "++db=postgresql", hydra_error=True),
        case("group-null", DEFAULTS, "db=null", hydra_error=True),
        case("nested-primary-config-add-global", DL, "+nested/choice=two", config_name="nested/base", hydra_error=True),
        case("nested-primary-config-default-package", DL, "+nested/choice=default_package", config_name="nested/base", hydra_error=True),
        dl("duplicate-self", "duplicate_self", hydra_error=True),
    ],
    # 8. `override`, `+experiment=`, `_here_`, `group@pkg`, `_global_`, multi-select
    '8': [
        case("dollar-key", EMPTY, "+$foo=1"),
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
    ],
    # 9. `hydra.*` settings and `hydra/launcher` from config.yaml and the command line
    '9': [
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
    ],
    # 11. `range()` keywords, casts, `sort()`, `shuffle()`, `glob()`, `tag()`
    '11': [
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
        sweep("glob-all", COMPOSITION, "schema=glob(*)"),
        sweep("glob-exclude", COMPOSITION, "schema=glob(*,exclude=support)"),
        sweep("glob-include-list", COMPOSITION, "schema=glob([s*,w*],exclude=school)"),
        sweep("glob-named", COMPOSITION, "schema=glob(include=[a*, s*], exclude=sc*)"),
        sweep("glob-on-value", SWEEP, "key=glob(*)"),
    ],
    # 12. No primary config; `${hydra:...}` resolver
    '12': [
        case("no-primary-config", GROUPS_ONLY, config_name=None),
        case("no-primary-config-add-group", GROUPS_ONLY, "+db=postgresql", config_name=None),
        case("no-primary-config-add-key", GROUPS_ONLY, "+foo=bar", config_name=None),
        case("hydra-choices-resolver", HYDRA_CHOICES),
        case("hydra-choices-resolver-override", HYDRA_CHOICES, "db=postgresql"),
        case("hydra-job-name-resolver", KEYS, "key=${hydra:job.name}"),
        case("hydra-runtime-choices-node", HYDRA_CHOICES, "+all=${hydra:runtime.choices}"),
    ],
    # Other differences, not named in the issue (details; discussed below)
    'other': [
        sweep("sweep-interpolations", SWEEP, "key=${other},x"),
        sweep("choice-of-str", SWEEP, "key=choice(str(10))"),
        sweep("choice-mixed-types", SWEEP, "key=choice(True, 'True', False, 'False', 'a', 1, 1.1, 2.0, 3, '1.5', '4')"),
        sweep("range-empty", SWEEP, "key=range(-10)"),
        sweep("sweep-project-timeout-kept", {"config.yaml": "timeout: 30\nlr: 0.1\n"}, "lr=0.1,0.01"),
    ],
}
