"""Sweeps: grid files -> cells x seeds -> run folders (``grid``), launchers that run any function
(``launchers``), and the upgrade of grid folders written before run ids changed (``migrate``)."""
