"""The subtype-biology report: one self-contained HTML page of every branch's results.

- :mod:`rdls.report.inputs`: the files the report reads, by branch (standard library only, so
  that the workflow's input functions can import it at parse time);
- :mod:`rdls.report.cards`: a biology card per subtype, sentences computed from the tables;
- :mod:`rdls.report.captions`: captions that state the method and the config values used;
- :mod:`rdls.report.sections`: one builder per section, the run's files in, HTML out;
- :mod:`rdls.report.montage`: tumour examples per subtype from the preprocessed crops;
- :mod:`rdls.report.build`: :func:`~rdls.report.build.build_report`, the page itself.

Images are embedded as base64 PNG and the page has no script, style sheet or font from
elsewhere, so it opens offline and can be mailed as one file.
"""
