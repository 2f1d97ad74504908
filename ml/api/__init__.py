"""The online path: an HTTP API over each task's deployed model and a page for loan officers.

`ml.api.app` (routes), `ml.api.live` (the models served, following the deployment manifest),
`ml.api.schema` (request rows from a bundle's input contract), `static/` (the page). It sits
above serving and explanation because an answer needs both: the prediction and its reasons.
"""
