"""An app whose import fails, as a typo or a missing dependency would make it."""

import a_module_that_is_not_installed  # noqa: F401

app = None
