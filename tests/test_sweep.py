"""Variation and generate_configs: unique samples, types kept, nested spaces."""
import pytest

from experiment_runner import Variation, generate_configs
from experiment_runner.errors import ConfigError
from experiment_runner.sweep import config_at, space_size


def canonical(config):
    import json

    return json.dumps(config, sort_keys=True)


def test_original_readme_example_gives_unique_configs_from_the_space():
    cfg = {"param_1": Variation([1, 2, 3, 4]), "param_2": Variation([1e-1, 1e-2, 1e-3])}
    configs = generate_configs(cfg, n_configs=3)
    assert len(configs) == 3
    assert len({canonical(c) for c in configs}) == 3
    for config in configs:
        assert config["param_1"] in [1, 2, 3, 4] and type(config["param_1"]) is int
        assert config["param_2"] in [1e-1, 1e-2, 1e-3] and type(config["param_2"]) is float


def test_n_configs_larger_than_the_space_returns_the_whole_space():
    configs = generate_configs({"a": Variation([1, 2]), "b": Variation(["x", "y", "z"])}, n_configs=100)
    assert len(configs) == 6
    assert len({canonical(c) for c in configs}) == 6


def test_without_n_configs_the_whole_grid_in_product_order():
    configs = generate_configs({"a": Variation([1, 2]), "b": Variation(["x", "y"]), "c": 0})
    assert configs == [
        {"a": 1, "b": "x", "c": 0},
        {"a": 1, "b": "y", "c": 0},
        {"a": 2, "b": "x", "c": 0},
        {"a": 2, "b": "y", "c": 0},
    ]


def test_choices_keep_type_and_value_dicts_and_lists_included():
    choices = [1, "1", 1.5, True, None, [1, 2], {"k": "v"}]
    configs = generate_configs({"v": Variation(choices)})
    assert [c["v"] for c in configs] == choices
    assert [type(c["v"]) for c in configs] == [type(x) for x in choices]


def test_variations_inside_lists_and_nested_dicts():
    cfg = {"model": {"layers": [Variation([8, 16]), 4], "opt": {"lr": Variation([0.1, 0.01])}}}
    configs = generate_configs(cfg)
    assert len(configs) == 4
    assert {(c["model"]["layers"][0], c["model"]["opt"]["lr"]) for c in configs} == {
        (8, 0.1), (8, 0.01), (16, 0.1), (16, 0.01)}
    assert all(c["model"]["layers"][1] == 4 for c in configs)


def test_a_dict_choice_holding_variations_is_a_sub_space():
    cfg = {"model": Variation([{"name": "forest", "depth": Variation([1, 2, 3])}, {"name": "linear"}])}
    assert space_size(cfg) == 4
    configs = generate_configs(cfg)
    assert configs == [
        {"model": {"name": "forest", "depth": 1}},
        {"model": {"name": "forest", "depth": 2}},
        {"model": {"name": "forest", "depth": 3}},
        {"model": {"name": "linear"}},
    ]


def test_equal_choices_count_once():
    assert Variation([1, 1, 2, 2, 2]).choices == [1, 2]
    assert Variation([{"a": 1}, {"a": 1}]).choices == [{"a": 1}]
    assert len(generate_configs({"a": Variation([1, 1, 2])}, n_configs=10)) == 2


def test_seed_makes_sampling_repeatable_and_different_seeds_differ():
    cfg = {"a": Variation(list(range(100))), "b": Variation(list(range(100)))}
    assert generate_configs(cfg, 20, seed=1) == generate_configs(cfg, 20, seed=1)
    assert generate_configs(cfg, 20, seed=1) != generate_configs(cfg, 20, seed=2)


def test_sampling_near_exhaustion_stays_unique():
    cfg = {f"p{i}": Variation(list(range(10))) for i in range(4)}
    configs = generate_configs(cfg, n_configs=9_999, seed=0)
    assert len({canonical(c) for c in configs}) == 9_999


def test_huge_spaces_can_be_sampled():
    cfg = {f"p{i}": Variation(list(range(100))) for i in range(12)}
    assert space_size(cfg) == 100**12
    configs = generate_configs(cfg, n_configs=50, seed=0)
    assert len({canonical(c) for c in configs}) == 50


def test_configs_share_no_mutable_objects_with_the_template_or_each_other():
    template = {"a": Variation([1, 2]), "shared": {"list": [1]}, "choice": Variation([[1], [2]])}
    configs = generate_configs(template)
    configs[0]["shared"]["list"].append(99)
    configs[0]["choice"].append(99)
    assert template["shared"]["list"] == [1]
    assert configs[1]["shared"]["list"] == [1]
    assert Variation([[1], [2]]).choices == [[1], [2]] and template["choice"].choices == [[1], [2]]


def test_config_at_decodes_every_index_once():
    cfg = {"a": Variation([1, 2, 3]), "b": [Variation(["x", {"c": Variation([True, False])}])]}
    decoded = [canonical(config_at(cfg, i)) for i in range(space_size(cfg))]
    assert len(set(decoded)) == space_size(cfg) == 9
    with pytest.raises(IndexError):
        config_at(cfg, 9)


@pytest.mark.parametrize(
    "make, message",
    [
        pytest.param(lambda: Variation([]), "has no choices", id="empty-variation"),
        pytest.param(lambda: Variation("abc"), "expects a list of choices", id="string-not-list"),
        pytest.param(lambda: generate_configs({"a": Variation([1])}, n_configs=-1), "n_configs", id="negative-n"),
        pytest.param(lambda: generate_configs({"a": Variation([1])}, n_configs=0), "n_configs must be a whole number >= 1",
                     id="zero-n"),
        pytest.param(lambda: generate_configs({"a": Variation([1])}, n_configs=2.5), "n_configs", id="float-n"),
    ],
)
def test_bad_sweeps_are_errors(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


@pytest.mark.parametrize(
    "space, n, seed, first, last",
    [
        pytest.param({name: Variation(list(range(10))) for name in "abc"}, 100, 2,
                     [{"a": 9, "b": 7, "c": 8}, {"a": 8, "b": 8, "c": 3}], {"a": 4, "b": 6, "c": 5},
                     id="a-tenth-of-a-small-space"),
        pytest.param({"a": Variation(list(range(4))), "b": Variation(["x", "y"])}, 6, 3,
                     [{"a": 1, "b": "y"}, {"a": 2, "b": "x"}], {"a": 3, "b": "y"}, id="most-of-a-small-space"),
        pytest.param({"a": Variation(list(range(10))), "b": Variation(list(range(10))),
                      "c": Variation(list(range(100)))},
                     100, 5, [{"a": 4, "b": 1, "c": 85}, {"a": 5, "b": 8, "c": 74}], {"a": 1, "b": 4, "c": 93},
                     id="a-hundredth-of-a-space"),
        pytest.param({f"p{i}": Variation(list(range(100))) for i in range(4)}, 6, 3,
                     [{"p0": 31, "p1": 93, "p2": 90, "p3": 71}, {"p0": 79, "p1": 54, "p2": 29, "p3": 16}],
                     {"p0": 81, "p1": 5, "p2": 67, "p3": 75}, id="few-of-a-large-space"),
        pytest.param({"m": Variation([{"k": "knn", "n": Variation([1, 2, 3])},
                                      {"k": "forest", "d": Variation([4, 8])}]),
                      "lr": Variation([0.1, 0.01])}, 4, 0,
                     [{"m": {"k": "forest", "d": 4}, "lr": 0.1}, {"m": {"k": "forest", "d": 8}, "lr": 0.01}],
                     {"m": {"k": "knn", "n": 2}, "lr": 0.1}, id="nested"),
    ],
)
def test_a_seed_samples_the_same_configs_in_every_version(space, n, seed, first, last):
    # A resumed sampled sweep finds its experiments by their configurations: these must never change for a seed.
    configs = generate_configs(space, n_configs=n, seed=seed)
    assert configs[:len(first)] == first
    if last is not None:
        assert configs[-1] == last


def test_the_sweep_decodes_its_configs_lazily_and_as_generate_configs_lists_them():
    from experiment_runner.sweep import sweep_configs

    space = {"a": Variation(list(range(100))), "b": Variation(list(range(100))), "fixed": {"layers": [64, (1, 2)]},
             "c": Variation([{"deep": [1]}, None])}
    lazy = sweep_configs(space, n_configs=5_000, seed=7)
    assert len(lazy) == 5_000 and lazy.indices.itemsize == 8  # indices in an array, not configurations in a list
    assert list(lazy) == generate_configs(space, n_configs=5_000, seed=7) == lazy
    assert lazy[4_999] == list(lazy)[-1] and list(lazy[10:12]) == list(lazy)[10:12]
    lazy[0]["fixed"]["layers"].append(99)
    assert lazy[0]["fixed"]["layers"] == [64, (1, 2)] and space["fixed"]["layers"] == [64, (1, 2)]
    grid = sweep_configs(space)
    assert len(grid) == 20_000 and grid[-1] == {"a": 99, "b": 99, "fixed": {"layers": [64, (1, 2)]}, "c": None}


def _digest(configs):
    import hashlib

    return hashlib.sha256(repr(configs).encode()).hexdigest()[:16]  # repr: values, types, key order and list order


_PINNED_SPACES = {
    "six-of-ten": lambda: {**{f"param_{i}": Variation(list(range(10))) for i in range(6)},
                           "fixed": {"name": "forest", "layers": [64, 64]}},
    "nested": lambda: {"m": Variation([{"k": "knn", "n": Variation([1, 2, 3]), "t": (1, [2])},
                                       {"k": "forest", "d": Variation([4, 8])}, None]),
                       "lr": Variation([0.1, 0.01, 1e-3]), "layers": [Variation([16, 32]), 8, (Variation([1, 2]),)],
                       "tag": "run"},
    "huge": lambda: {f"p{i}": Variation(list(range(1000))) for i in range(8)},
    "wide": lambda: {"a": Variation(list(range(10**4))), "b": Variation(list(range(10**3)))},
    "root-variation": lambda: Variation([{"x": Variation([1, 2])}, [3, Variation(["a", "b", "c"])], 5]),
}


@pytest.mark.parametrize(
    "space, n, seed, count, digest",
    [
        # Digests of the whole output, taken with the code before sampling was made faster; each way of drawing
        # the indices is covered: a tenth of the space or less, more than that, a sample large against the space
        # (its picks remembered in a bitmap), small against it (in a set), a space beyond sys.maxsize, the grid.
        ("six-of-ten", 100_000, 0, 100_000, "289168f4a950f356"),
        ("six-of-ten", 100_000, 1, 100_000, "0797bcf3ff1dae8f"),
        ("six-of-ten", 200, 5, 200, "9d1039fdf4b7429c"),
        ("six-of-ten", 200_000, 2, 200_000, "e1d17ef56dac68ad"),
        ("nested", 10, 0, 10, "dc37887fb2a802c0"),
        ("nested", 70, 4, 70, "7167bccec16c79f5"),
        ("nested", None, None, 72, "46eed8aec2f8d79f"),
        ("huge", 1000, 0, 1000, "19e3b45682cd3638"),
        ("wide", 30_000, 8, 30_000, "e4b442131d5c1d91"),
        ("wide", 1000, 9, 1000, "a3c1a270d16e46c1"),
        ("root-variation", 7, 2, 6, "cfd32206216aed12"),
        ("root-variation", None, None, 6, "bb173f4ae59476ed"),
    ],
)
def test_a_seed_gives_exactly_the_configs_it_always_gave(space, n, seed, count, digest):
    configs = generate_configs(_PINNED_SPACES[space](), n_configs=n, seed=seed)
    assert len(configs) == count and _digest(configs) == digest


@pytest.mark.parametrize("largest_table", [4096, 6])
def test_a_listed_sweep_holds_the_configs_each_index_decodes_to(monkeypatch, largest_table):
    # generate_configs decodes a whole list at once, runs of neighbouring Variations read from a table of their
    # combinations (at most largest_table each): the same configurations, of the same types, as each index alone.
    from experiment_runner import sweep

    monkeypatch.setattr(sweep, "_MAX_TABLE", largest_table)
    space = {"a": Variation([1, 2, 3]), "b": Variation(["x", "y"]), "k": "constant", "c": Variation([0.5, 1.5, None]),
             "d": Variation([True, False]), "g": Variation([1, 2]), "e": Variation([[1], [2]]),
             "l": [Variation([1, 2]), Variation([3, 4, 5]), 5], "t": (Variation([1, 2]), 7)}
    size = space_size(space)
    assert repr(generate_configs(space)) == repr([config_at(space, index) for index in range(size)])
    sample = generate_configs(space, n_configs=size // 3, seed=4)
    assert len({canonical(config) for config in sample}) == size // 3


@pytest.mark.parametrize("collecting", [True, False])
def test_generate_configs_leaves_the_cycle_collector_as_it_found_it(collecting):
    import gc

    was = gc.isenabled()
    (gc.enable if collecting else gc.disable)()
    try:
        generate_configs({"a": Variation(list(range(100))), "b": {"c": [1]}}, n_configs=50, seed=0)
        assert gc.isenabled() is collecting
        with pytest.raises(ConfigError):
            generate_configs({"a": Variation([1])}, n_configs=0)
        assert gc.isenabled() is collecting
    finally:
        (gc.enable if was else gc.disable)()
