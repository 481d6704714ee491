"""CityOS: an open-source City OS (都市OS) following Japan's Smart City Reference Architecture."""

__version__ = "0.1.0"
