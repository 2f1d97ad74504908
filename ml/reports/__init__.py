"""The reports: static HTML pages with plots, drawn from warehouse tables only.

Each page has a module that reads what it draws (`eda_data`, `model_data`, `segments_data`),
modules of plots (`eda_plots`, `evaluation_plots`, `shap_plots`, `segments_plots`), and one that
assembles and writes the page (`eda_page`, `model_page`, `segments_page`); `index` writes them
all with `index.html`. Shared: `page` (a page's sections, blocks and writer), `figures` (a
figure as PNG, colours), `labels` (units and category order of columns), `reading` (the
read-only queries) and `options` (the report commands' common options).

Reports never load a model, refit a preprocessor or recompute an explanation: what training and
segmentation computed, they stored (`ml.shap_sample`, `ml.segment_projection`, ...), and the
pages draw those tables.
"""
