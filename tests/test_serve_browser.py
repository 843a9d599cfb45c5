"""The page of ``experiment-runner serve`` in a real browser: Debian's chromium, driven headless by Playwright.

Real runs made here (backend single), a real server in a subprocess on a free
loopback port, one browser for the whole module and a fresh page per test.
Nothing here waits by sleeping: Playwright's assertions wait for what the
page shows, and the live run's experiments wait for files this test creates.
"""
import io
import os
from pathlib import Path

import pytest

from browser_runs import OTHER_ERROR, SAME_ERROR, make_sweep, served, start_gated_run

sync_api = pytest.importorskip("playwright.sync_api")
Image = pytest.importorskip("PIL.Image")
expect = sync_api.expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
#: How long an assertion waits for the page (ms): generous for a busy machine, never reached when all is well.
WAIT = 15_000

if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(f"no {CHROMIUM}: apt-get install chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    expect.set_options(timeout=WAIT)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A folder of two finished runs: 'sweep' (with failures) and 'again' (the same sweep, one repetition)."""
    root = tmp_path_factory.mktemp("serve") / "results"
    make_sweep(root / "sweep")
    make_sweep(root / "again", repetitions=1, failing=False)
    return root


@pytest.fixture(scope="module")
def address(runs):
    with served(runs) as url:
        yield url


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    page.set_default_timeout(WAIT)
    yield page
    context.close()
    assert not errors, f"the page raised: {errors}"


def open_run(page, address, run):
    page.goto(f"{address}#run={run}")
    expect(page.locator("#results-table tbody tr").first).to_be_visible()


def ids_shown(page):
    return [int(i) for i in page.locator("#results-table tbody tr").evaluate_all(
        "rows => rows.map(row => row.dataset.experimentId)")]


def test_the_runs_list_shows_every_run_with_its_state_and_counts(page, address):
    page.goto(address)
    sweep = page.locator('#runs-table tbody tr[data-run="sweep"]')
    expect(sweep.locator(".state")).to_have_attribute("data-state", "finished")
    expect(sweep).to_contain_text("9 / 15")
    expect(page.locator('#runs-table tbody tr[data-run="again"]')).to_contain_text("9 / 9")
    expect(page.locator("#runs-table tbody tr")).to_have_count(2)
    page.locator('#runs-table tbody tr[data-run="sweep"] a').click()
    expect(page.locator("#run-title")).to_have_text("sweep")
    expect(page.locator("#progress-text")).to_contain_text("9 of 15 finished, 6 failed")


def test_the_table_sorts_by_a_metric_column_and_marks_the_best_row(page, address):
    open_run(page, address, "sweep")
    expect(page.locator("#results-table tbody tr.best")).to_have_attribute("data-experiment-id", "5")  # lr .01, depth 3
    header = page.locator('#results-table th[data-column="accuracy"]')
    header.click()
    expect(header).to_have_attribute("aria-sort", "descending")  # a score: highest first
    assert ids_shown(page)[:2] == [5, 4]
    header.click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    assert ids_shown(page)[0] == 6  # lr 0.1, depth 1: the lowest accuracy
    page.locator('#results-table th[data-column="lr"]').click()
    expect(page.locator('#results-table th[data-column="lr"]')).to_have_attribute("aria-sort", "ascending")
    assert ids_shown(page)[:3] == [0, 1, 2]


def test_a_filter_narrows_the_table(page, address):
    open_run(page, address, "sweep")
    expect(page.locator("#page-info")).to_have_text("1–9 of 9")
    page.locator('#filters select[data-parameter="depth"]').select_option(value="2")
    expect(page.locator("#page-info")).to_have_text("1–3 of 3 (filtered from 9)")
    assert ids_shown(page) == [1, 4, 7]
    page.locator('#filters select[data-parameter="lr"]').select_option(value="0.1")
    expect(page.locator("#results-table tbody tr")).to_have_count(1)
    assert ids_shown(page) == [7]


def test_a_click_on_a_row_opens_the_experiment(page, address):
    open_run(page, address, "sweep")
    page.locator('#results-table tbody tr[data-experiment-id="4"]').click()
    panel = page.locator("#experiment-panel")
    expect(panel).to_be_visible()
    expect(panel).to_have_attribute("data-experiment-id", "4")
    expect(page.locator("#experiment-config")).to_contain_text('"lr": 0.01')
    expect(page.locator("#experiment-path")).to_contain_text(str(Path("sweep") / "4"))
    expect(page.locator("#experiment-scores tbody tr")).to_have_count(2)  # one row per repetition
    expect(page.locator("#experiment-logs")).to_contain_text("fitted lr=0.01 depth=2")
    expect(page.locator("#experiment-metrics .main-svg").first).to_be_visible()  # its learning curve


def test_failures_are_grouped_with_their_traceback(page, address):
    open_run(page, address, "sweep")
    groups = page.locator("#failures .failure-group")
    expect(groups).to_have_count(2)
    first = groups.nth(0)
    expect(first).to_have_attribute("data-count", "5")
    expect(first.locator(".failure-error")).to_have_text(f"ValueError: {SAME_ERROR}")
    expect(first.locator("pre.traceback")).to_be_visible()
    expect(first.locator("pre.traceback")).to_contain_text("raise ValueError(SAME_ERROR)")
    second = groups.nth(1)
    expect(second).to_have_attribute("data-count", "1")
    second.locator("summary").click()
    expect(second.locator("pre.traceback")).to_contain_text(OTHER_ERROR)


def distinct_colours(png: bytes) -> int:
    return len(Image.open(io.BytesIO(png)).convert("RGB").getcolors(maxcolors=1 << 24))


def test_the_plots_render(page, address):
    open_run(page, address, "sweep")
    plot = page.locator("#metric-plot")
    expect(plot.locator(".scatterlayer .trace")).to_have_count(1)
    expect(plot.locator(".gtitle")).to_have_text("accuracy by lr")
    assert distinct_colours(plot.screenshot()) > 20  # axes, text, a line, error bars: not a blank area
    page.locator("#plot-hue").select_option("depth")
    expect(plot.locator(".scatterlayer .trace")).to_have_count(3)  # one line per depth
    parallel = page.locator("#parallel-plot")
    expect(parallel.locator(".parcoords .axis-title")).to_have_count(3)  # lr, depth and the metric
    assert distinct_colours(parallel.screenshot()) > 20
    curves = page.locator("#curves-plot")
    expect(curves.locator(".scatterlayer .trace").first).to_be_visible()
    assert distinct_colours(curves.screenshot()) > 20


def test_comparing_two_runs_shows_both(page, address):
    page.goto(address)
    for run in ("sweep", "again"):
        page.locator(f'#runs-table tbody tr[data-run="{run}"] input.compare-pick').check()
    page.locator("#compare-button").click()
    expect(page.locator("#compare-view")).to_be_visible()
    expect(page.locator('#compare-table tbody tr[data-run="sweep"]')).to_have_count(9)
    expect(page.locator('#compare-table tbody tr[data-run="again"]')).to_have_count(9)
    expect(page.locator("#compare-plot .scatterlayer .trace")).to_have_count(2)  # one line per run
    expect(page.locator("#compare-plot .legend")).to_contain_text("again")
    assert distinct_colours(page.locator("#compare-plot").screenshot()) > 20


def test_the_page_follows_a_run_while_it_is_going(page, tmp_path):
    """A run in another process whose experiments end when this test says so; the page, once loaded, is never
    reloaded (a mark set on its window survives) and shows each step."""
    root, gates = tmp_path / "results", tmp_path / "gates"
    gates.mkdir()
    root.mkdir()
    run = start_gated_run(root / "live", gates, experiments=3)
    try:
        with served(root) as address:
            page.goto(address)
            row = page.locator('#runs-table tbody tr[data-run="live"]')
            expect(row.locator(".state")).to_have_attribute("data-state", "running")
            row.locator("a").click()
            progress = page.locator("#progress-text")
            expect(progress).to_contain_text("0 of 3 finished")
            page.evaluate("window.notReloaded = true")
            (gates / "0").touch()
            expect(progress).to_contain_text("1 of 3 finished")
            expect(page.locator("#results-table tbody tr")).to_have_count(1)
            (gates / "1").touch()
            expect(page.locator("#results-table tbody tr")).to_have_count(2)
            # the plot, absent while nothing had finished, appears with the first results
            expect(page.locator("#metric-plot .scatterlayer .trace")).to_have_count(1)
            expect(page.locator("#metric-plot .gtitle")).to_have_text("score by x")
            (gates / "2").touch()
            expect(page.locator("#run-state")).to_have_attribute("data-state", "finished")
            expect(progress).to_contain_text("3 of 3 finished")
            expect(page.locator("#results-table tbody tr")).to_have_count(3)
            assert page.evaluate("window.notReloaded") is True
    finally:
        for i in range(3):
            (gates / str(i)).touch()
        run.wait(timeout=60)
        errors = run.stderr.read().decode()
        run.stderr.close()
    assert run.returncode == 0, errors


def test_with_an_access_token_the_printed_address_opens_the_page_and_nothing_else_does(page, runs):
    with served(runs, "--token", "open-sesame") as address:
        assert address.endswith("/?token=open-sesame")
        page.goto(address.split("?")[0])
        expect(page.locator("body")).to_contain_text("an access token is needed")
        page.goto(f"{address}#run=sweep")
        expect(page.locator("#results-table tbody tr")).to_have_count(9)
        expect(page.locator("#metric-plot .scatterlayer .trace")).to_have_count(1)  # Plotly's script came too
        expect(page.locator("#error-banner")).to_be_hidden()


def test_serving_one_run_opens_it_at_once(page, runs):
    with served(runs / "sweep") as address:
        page.goto(address)
        expect(page.locator("body")).to_have_attribute("data-view", "run")
        expect(page.locator("#run-title")).to_have_text(str((runs / "sweep").resolve()))
        expect(page.locator("#results-table tbody tr")).to_have_count(9)
