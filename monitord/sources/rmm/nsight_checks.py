"""What an N-sight failing check is about (`Category`).

The description's prefix decides ("Disk Space Check - Drive C:"): it is what the
dashboard shows and it names the check class in words, while only type 1023 is
documented among the numeric check types (shared/docs/rmm.md §1.5). The type is a
hint for descriptions no prefix matches, such as the localised ones of a dashboard
in another language than those listed. Linux and Mac checks use 2xxx/3xxx with the
Windows check's last three digits.
"""

from __future__ import annotations

from monitord.sources.rmm.base import Category

TASK_TYPE = "023"  # Automated Task (1023 [P]; 2023/3023 by the same rule)

# Lower-case description prefixes. German ones as the docs saw them stripped by a
# German wallchart; other languages fall back on the type.
PREFIXES: dict[str, Category] = {
    "antivirus update check": Category.ANTIVIRUS,
    "managed antivirus": Category.ANTIVIRUS,
    "backup check": Category.BACKUP,
    "backup & recovery": Category.BACKUP,
    "sicherungsüberprüfung": Category.BACKUP,
    "disk space check": Category.DISK_SPACE,
    "drive space change check": Category.DISK_SPACE,
    "exchange store size check": Category.DISK_SPACE,  # a size threshold: capacity
    "file size check": Category.DISK_SPACE,
    "performance monitoring check": Category.PERFORMANCE,
    "bandwidth monitoring": Category.PERFORMANCE,
    "physical disk health check": Category.HARDWARE,
    "physical memory health check": Category.HARDWARE,
    "ping check": Category.PING,
    "tcp service check": Category.SERVICE,
    "windows service check": Category.SERVICE,
    "windows-dienst-überprüfung": Category.SERVICE,
    "auto-start service": Category.SERVICE,
    "web page check": Category.WEB,
    "website check": Category.WEB,
    "event log check": Category.EVENT_LOG,
    "critical events check": Category.EVENT_LOG,
    "wsus check": Category.PATCH,
    "patch": Category.PATCH,
    "vulnerability": Category.PATCH,
    "automated task": Category.TASK,
    "script check": Category.SCRIPT,
}
_BY_LENGTH = sorted(PREFIXES.items(), key=lambda item: -len(item[0]))

# The last three digits of check_type (docs §1.5: [R] for 001-015, [S] after).
TYPES: dict[str, Category] = {
    "001": Category.ANTIVIRUS,
    "002": Category.BACKUP,
    "003": Category.DISK_SPACE,
    "004": Category.DISK_SPACE,
    "005": Category.DISK_SPACE,
    "007": Category.PERFORMANCE,
    "008": Category.HARDWARE,
    "009": Category.HARDWARE,
    "010": Category.PING,
    "011": Category.SERVICE,
    "012": Category.WEB,
    "013": Category.SERVICE,
    "014": Category.EVENT_LOG,
    "018": Category.PERFORMANCE,
    "019": Category.DISK_SPACE,
    "020": Category.EVENT_LOG,
    "021": Category.PATCH,
    "022": Category.SERVICE,
    TASK_TYPE: Category.TASK,
    "024": Category.SCRIPT,
    "025": Category.PATCH,
    "026": Category.ANTIVIRUS,
    "030": Category.BACKUP,
    "034": Category.ANTIVIRUS,
}


def classify(description: str, check_type: str) -> Category:
    """The category of a check: its description's prefix, else its type, else OTHER."""
    text = description.strip().lower()
    for prefix, category in _BY_LENGTH:
        if text.startswith(prefix):
            return category
    return TYPES.get(_family(check_type), Category.OTHER)


def is_task(check_type: str) -> bool:
    return _family(check_type) == TASK_TYPE


def _family(check_type: str) -> str:
    code = check_type.strip()
    if len(code) == 4 and code.isdigit() and code[0] in "123":
        return code[1:]
    return ""
