"""The project's scikit-learn building blocks that saved models are made of.

Training composes them into pipelines, serving unpickles and runs them, explanation reads their
fitted parts: `preprocessing` (which columns are features and how they become numbers) and
`nets` (the Keras MLP as a scikit-learn estimator). A pickled model refers to these modules by
name, so they stay where they are.
"""
