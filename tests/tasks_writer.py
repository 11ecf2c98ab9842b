"""A process that saves Parcels (each save enqueues a task) and then waits to be killed.

``python -m tests.tasks_writer N`` with ``DJANGO_SETTINGS_MODULE=tests.tasks_worker_settings``:
saves N parcels, half of them inside ``transaction.atomic()``, prints ``saved N`` and waits.
"""

from __future__ import annotations

import sys
import threading

import django


def main() -> None:
    django.setup()
    from django.db import transaction

    from tests.tasksapp.models import Parcel

    count = int(sys.argv[1])
    for index in range(count):
        if index % 2:
            with transaction.atomic():
                Parcel.objects.create(title=f"parcel {index}")
        else:
            Parcel.objects.create(title=f"parcel {index}")
    print(f"saved {count}", flush=True)
    threading.Event().wait()  # until SIGKILL


if __name__ == "__main__":
    main()
