"""Trend engine: observations -> tidy share series with confidence, signals, forecasts and reports.

Works on any table of observations (tags made by the fashion analysers, or labels made elsewhere), so
the lake is only one of several sources; see :mod:`visionlake.trends.observations`.
"""
