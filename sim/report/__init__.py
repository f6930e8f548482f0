"""Run reports: ``report.md`` plus PNG plots (matplotlib Agg, no display)."""

from sim.report.markdown import render_report, write_report
from sim.report.plots import write_plots

__all__ = ["render_report", "write_plots", "write_report"]
