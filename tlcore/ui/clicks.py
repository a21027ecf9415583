"""Clicks on a Plotly chart, in the browser: Gradio's plot passes none of them to Python."""
from __future__ import annotations


def on_plotly_click(chart_id: str, body: str) -> str:
    """JS for the chart's ``.change``: once the chart with ``elem_id`` ``chart_id`` is drawn, run
    ``body`` on each click, with ``p`` the clicked point. Bound once per drawn chart (each redraw
    is a new element); the chart may appear a moment after the change, so binding retries for 5 s."""
    return """() => {
  let tries = 0;
  const bind = () => {
    const plot = document.querySelector('#%s .js-plotly-plot');
    if (!plot || !plot.on) { if (++tries < 50) setTimeout(bind, 100); return; }
    if (plot.dataset.clicksBound) return;
    plot.dataset.clicksBound = '1';
    plot.on('plotly_click', (e) => {
      const p = e.points && e.points[0];
      if (!p) return;
%s
    });
  };
  bind();
}""" % (chart_id, body.strip("\n"))
