"""Data: what to learn. The synthetic world and its generators, the task registry, user files.

Nothing here builds or trains a model; `import transfer_lab.data` needs neither torch nor
transformers.
"""
