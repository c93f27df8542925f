pytest_plugins = ["streamlab.testing"]
