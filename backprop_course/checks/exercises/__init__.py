"""Exercise definitions, one module per lesson notebook, named after it
(``nb03_jacobians_relu.py`` for ``notebooks/03_jacobians_relu.ipynb``); importing this
package registers them all."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
