"""CUDA path of the fused kernels (placeholder replaced below)."""
