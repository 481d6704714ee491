"""AS  asset management — devices, systems, actuator commands (AS-*).

External systems pulled on a schedule: :mod:`cityos.assets.systems`.
"""
