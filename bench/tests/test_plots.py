"""The plots are readable: no label crossed by a whisker, no legend over a point or a whisker, whiskers everywhere.

Drawn from the committed full run (docs/performance/results.json), the
figures are checked in display coordinates before they are written.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1]
RESULTS = BENCH.parent / "docs" / "performance" / "results.json"
sys.path.insert(0, str(BENCH))

matplotlib = pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    from matplotlib.figure import Figure
    from suite import report

    drawn = {}
    save = Figure.savefig

    def keep(figure, path, *args, **kwargs):
        # Drawn, and its renderer kept, before plots() closes it (a closed figure loses its canvas).
        figure.canvas.draw()
        figure.kept_renderer = figure.canvas.get_renderer()
        drawn[Path(path).name] = figure
        return save(figure, path, *args, **kwargs)

    Figure.savefig = keep
    try:
        report.plots(json.loads(RESULTS.read_text()), tmp_path_factory.mktemp("plots"))
    finally:
        Figure.savefig = save
    return drawn


def whisker_boxes(ax):
    # Error bars are LineCollections; each segment's bounding box in display coordinates.
    boxes = []
    for collection in ax.collections:
        for path in collection.get_paths():
            boxes.append(path.transformed(collection.get_transform()).get_extents())
    return boxes


def point_boxes(ax, pad=3.0):
    from matplotlib.transforms import Bbox

    boxes = []
    for line in ax.get_lines():
        for x, y in line.get_transform().transform(line.get_xydata()):
            boxes.append(Bbox([[x - pad, y - pad], [x + pad, y + pad]]))
    return boxes


def overlapping(box, boxes):
    return [other for other in boxes if box.overlaps(other)]


def test_no_ratio_label_on_the_in_process_plot_is_crossed_by_a_whisker(figures):
    ax = figures["inprocess.png"].axes[0]
    renderer = figures["inprocess.png"].kept_renderer
    whiskers = whisker_boxes(ax)
    texts = [text for text in ax.texts if text.get_text().endswith("x bare")]
    assert texts
    for text in texts:
        assert not overlapping(text.get_window_extent(renderer), whiskers), text.get_text()


def test_no_legend_on_the_scaling_plot_hides_a_point(figures):
    figure = figures["scaling.png"]
    renderer = figure.kept_renderer
    points = [box for ax in figure.axes for box in point_boxes(ax)]
    legends = [ax.get_legend() for ax in figure.axes if ax.get_legend() is not None]
    assert len(legends) == 3
    for legend in legends:
        assert not overlapping(legend.get_window_extent(renderer), points)


def test_the_http_legend_covers_no_bar_and_no_whisker(figures):
    figure = figures["http.png"]
    ax = figure.axes[0]
    renderer = figure.kept_renderer
    legend = ax.get_legend().get_window_extent(renderer)
    bars = [patch.get_window_extent(renderer) for patch in ax.patches]
    assert not overlapping(legend, whisker_boxes(ax) + bars)
    # Outside the axes: no other run's whiskers can reach it either.
    assert not legend.overlaps(ax.get_window_extent(renderer))


def test_the_client_plot_has_whiskers_and_values(figures):
    ax = figures["client.png"].axes[0]
    rows = json.loads(RESULTS.read_text())["client"]["rows"]
    assert len(whisker_boxes(ax)) >= len(rows)
    shown = {text.get_text() for text in ax.texts}
    assert {f"{row['calls_per_s']:,.0f}/s" for row in rows} <= shown
    renderer = figures["client.png"].kept_renderer
    for text in ax.texts:
        assert not overlapping(text.get_window_extent(renderer), whisker_boxes(ax)), text.get_text()
