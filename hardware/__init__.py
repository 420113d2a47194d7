"""Neuromorphic targets and measurement; sees only :mod:`aura_snn` models and graphs.

* :mod:`hardware.nir` — NIR export (``to_nir``) and import (``from_nir``), HDF5 files;
* :mod:`hardware.loihi` — the Loihi 2 fixed-point twin (``quantize``), bit-exact with
  Lava's bit-accurate models (graphs: :mod:`hardware.loihi_graph`);
  :mod:`hardware.loihi_file` — its network files;
* :mod:`hardware.lava` — the Lava process network (``export``) and runs in Lava's
  simulator (``run``; graphs: :mod:`hardware.lava_graph`), imported through
  :mod:`hardware.lava_compat` on Python 3.11;
* :mod:`hardware.partition` — hybrid models split into PyTorch and spiking parts
  (graphs: :mod:`hardware.partition_graph`);
* :mod:`hardware.energy` — energy per target (45 nm CMOS, Loihi, a GPU estimate; each
  figure with its source) priced from :mod:`aura_snn.metrics.ops` counts, and
  :mod:`hardware.energy_graph` — the same for graph runs
  (:class:`aura_snn.metrics.graph_ops.GraphOpCounter`);
* :mod:`hardware.cli` — the ``aura-snn export`` and ``energy`` subcommands and the
  hardware steps of ``aura-snn demo`` (entry points, so the core never imports them).
"""
