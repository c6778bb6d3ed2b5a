"""corral: a centralized cluster manager that speaks the Kubernetes API."""
__version__ = "0.1.0"
