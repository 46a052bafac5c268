"""SNMP check type (`snmp`): v1/v2c/v3 polling with pysnmp 7 on asyncio.

Modules: `check` (SnmpCheck, the kind), `params` (config model, profiles and
their metrics), `client` (requests, sessions, error translation), `profiles`
and `generic` (what is fetched and how it is judged), `conditions`
(thresholds), `counters` (rates), `oids` (offline MIB names), `report`
(results).
"""

import warnings

with warnings.catch_warnings():
    # When pysmi is installed (snmpsim needs it in the tests), pysnmp 7.1's MIB
    # compiler glue imports pysmi's deprecated camelCase names at import time.
    # This package never compiles or loads MIBs, so the warning is only noise
    # (and an error under the test suite's filterwarnings=error).
    warnings.simplefilter("ignore", DeprecationWarning)
    import pysnmp.hlapi.v1arch.asyncio
    import pysnmp.hlapi.v3arch.asyncio  # noqa: F401

from checks.snmp.check import SnmpCheck
from checks.snmp.params import SnmpParams

__all__ = ["SnmpCheck", "SnmpParams"]
