"""The version of report.json's layout: written by the engine (segment/write.py), checked by its readers (the
Slicer module's results loader), one definition for both; importable without numpy or torch."""

REPORT_SCHEMA = "diffugts.segment.report/1"
