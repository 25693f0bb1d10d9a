"""Reports: run folders -> tidy tables (CSV, Markdown, LaTeX) and figures. Nothing here trains."""
