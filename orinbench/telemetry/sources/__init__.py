"""Power sources: ``sysfs`` (INA3221 hwmon files), ``jtop`` (jetson-stats, in a child process),
``tegrastats`` and ``nvml``. Each module imports its optional runtime only when used."""
