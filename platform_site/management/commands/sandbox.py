"""Run the whole sandbox in one terminal: migrate, seed a demo login, then web + worker + beat.

No PostgreSQL, Redis or Docker: SQLite, a file cache and a filesystem Celery broker under var/.
A process that dies is started again (the worker, beat, the web server, the local cloud); Ctrl-C or SIGTERM
stops every process within STOP_GRACE_SECONDS plus a moment (SIGTERM to all at once, then SIGKILL).

The local cloud (workspaces.moto_server, which runs moto) is imported when the sandbox starts, not with this
module: moto is a sandbox and test requirement (requirements-sandbox.txt), not in the production image.
"""

import contextlib
import gc
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, Organization, OrgRole, User
from accounts.services import token_create
from budgets.models import Allocation, BudgetPool
from platform_site.tasks import record_worker_heartbeat
from projects.models import Project, ProjectMember, ProjectRole
from templates.services import template_catalog_load
from workspaces.models import CloudAccount

DEMO_EMAIL = "demo@carrel.localhost"
DEMO_PASSWORD = "carrel-sandbox-demo"  # sandbox only; printed on start
# How long stopping waits for processes to exit after SIGTERM before it SIGKILLs their process groups. A Celery
# worker's warm shutdown would wait for its running tasks; they are acknowledged late, so a killed task runs again.
STOP_GRACE_SECONDS = 1.5


@transaction.atomic
def seed_demo() -> tuple[User, Organization, Project]:
    user = User.objects.filter(email=DEMO_EMAIL).first()
    if user is None:
        user = User.objects.create_superuser(email=DEMO_EMAIL, password=DEMO_PASSWORD, username="demo")
        user.first_name, user.last_name = "Demo", "Researcher"
        user.save(update_fields=["first_name", "last_name"])
    EmailAddress.objects.update_or_create(user=user, email=DEMO_EMAIL, defaults={"verified": True, "primary": True})
    organization, _ = Organization.objects.get_or_create(slug="demo-lab", defaults={"name": "Demo Lab"})
    Membership.objects.get_or_create(organization=organization, user=user, defaults={"role": OrgRole.OWNER})
    project = Project.objects.filter(organization=organization, name="Demo Project", deleted_at__isnull=True).first()
    if project is None:
        project = Project.objects.create(
            organization=organization,
            name="Demo Project",
            description="A project to try Carrel with.",
            created_by=user,
        )
    ProjectMember.objects.get_or_create(project=project, user=user, defaults={"role": ProjectRole.OWNER})
    seed_demo_budget(user=user, organization=organization, project=project)
    template_catalog_load()
    return user, organization, project


def seed_demo_budget(*, user: User, organization: Organization, project: Project) -> Allocation:
    """A grant and the demo project's share of it, so a launch moves real numbers within minutes: the money
    endpoints (`/api/v1/projects/{id}/budget`, `/api/v1/budgets`) read the ledger the launch writes."""
    now = timezone.now()
    pool, _ = BudgetPool.objects.get_or_create(
        organization=organization,
        name="Demo Grant",
        defaults={
            "description": "A year of cloud computing for the demo lab.",
            "total_amount": Decimal("5000"),
            "start_date": now - timedelta(days=1),
            "end_date": now + timedelta(days=365),
            "created_by": user,
        },
    )
    allocation, _ = Allocation.objects.get_or_create(
        project=project,
        defaults={
            "pool": pool,
            "amount": Decimal("1000"),
            "alert_thresholds": ["0.5", "0.8", "0.9"],
            "auto_hibernate_threshold": Decimal("0.95"),
            "prevent_launch_threshold": Decimal("1.0"),
            "allocated_by": user,
        },
    )
    return allocation


def point_sandbox_cloud_at(*, organization: Organization, url: str) -> CloudAccount:
    """The demo organization's cloud account is the local moto server (its port may change per start)."""
    from workspaces.moto_server import sandbox_image_id

    account, _ = CloudAccount.objects.update_or_create(
        organization=organization,
        name="sandbox-cloud",
        defaults={
            "region": "us-east-1",
            "endpoint_url": url,
            "image_overrides": {"*": sandbox_image_id(url)},
            "is_default": True,
        },
    )
    return account


class Command(BaseCommand):
    help = "Start the sandbox: web console + API, Celery worker and beat, with a demo login."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("CARREL_PORT", "8000")))
        parser.add_argument("--host", default=os.environ.get("CARREL_HOST", "127.0.0.1"))
        parser.add_argument("--seed-only", action="store_true", help="Migrate and seed, then exit.")
        parser.add_argument("--cloud-port", type=int, default=int(os.environ.get("CARREL_MOTO_PORT", "0")) or None)

    def handle(self, *args, port: int, host: str, seed_only: bool, cloud_port: int | None, **options):
        call_command("migrate", interactive=False, verbosity=0)
        user, organization, project = seed_demo()
        issued = token_create(actor=user, name="sandbox", scopes=["read", "write"])
        base = f"http://{host}:{port}"
        if seed_only:
            self._print_banner(base, organization, project, issued.secret, cloud_url=None)
            return
        from workspaces.moto_server import SANDBOX_AWS_ENV, start_moto_server

        # SIGTERM stops the sandbox the way Ctrl-C does: through the KeyboardInterrupt handler below.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        # Links in e-mails (invitations, sign-up) point at this sandbox's web server.
        os.environ.setdefault("CARREL_PUBLIC_URL", base)
        os.environ.update({key: os.environ.get(key, value) for key, value in SANDBOX_AWS_ENV.items()})
        supervisor = Supervisor(
            self._commands(host, port), env={**os.environ, "PYTHONUNBUFFERED": "1"}, log=self.stderr.write
        )
        moto = None
        try:
            moto = start_moto_server(cloud_port or port + 1)
            point_sandbox_cloud_at(organization=organization, url=moto.url)
            self._print_banner(base, organization, project, issued.secret, cloud_url=moto.url)
            # A first heartbeat for the worker to record as soon as it is up (beat sends the next in 30 s), so that
            # GET /api/v1/daemon/status says whether the worker runs from the start.
            record_worker_heartbeat.delay()
            supervisor.start_all()
            self._watch(supervisor, moto, organization)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping the sandbox…")
        finally:
            # A second Ctrl-C must not cut the stop short and leave processes behind.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            supervisor.stop_all(also=[moto.process] if moto else [])
            # Everything is stopped: spare the interpreter's final garbage collection over Django and boto3's
            # objects (a second or more), so that the prompt comes back at once.
            gc.freeze()

    def _print_banner(self, base: str, organization: Organization, project: Project, token: str, *, cloud_url) -> None:
        self.stdout.write(
            self.style.SUCCESS("\nCarrel sandbox\n")
            + f"  Console:        {base}/          (sign in with the demo login)\n"
            + f"  Demo login:     {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
            + f"  API docs:       {base}/api/v1/docs/\n"
            + f"  Admin:          {base}/admin/\n"
            + f"  Organization:   {organization.name} ({organization.id})\n"
            + f"  Project:        {project.name} ({project.id}), $1,000 of the $5,000 Demo Grant\n"
            + f"                  {base}/projects/{project.id}/\n"
            + f"  API token:      {token}\n"
            + f"  Try:            curl -H 'Authorization: Bearer {token}' {base}/api/v1/projects\n"
            + f"  Money:          curl -H 'Authorization: Bearer {token}' {base}/api/v1/projects/{project.id}/budget\n"
            + (
                f"  Local cloud:    {cloud_url}  (a moto EC2 server; templates: {base}/api/v1/templates)\n"
                + "  Launch:         curl -H 'Authorization: Bearer "
                + token
                + "' -H 'Content-Type: application/json' -d "
                + '\'{"name": "my-box", "template": "Python Machine Learning", "size": "S"}\' '
                + f"{base}/api/v1/instances/launch\n"
                if cloud_url
                else ""
            )
            + f"  Data:           {settings.VAR_DIR}  (e-mail is printed below)\n"
        )
        self.stdout.flush()

    @staticmethod
    def _commands(host: str, port: int) -> dict[str, list[str]]:
        python = sys.executable
        return {
            "web": [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"],
            "worker": [python, "-m", "celery", "-A", "platform_site", "worker", "-l", "info", "--concurrency", "2"],
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "platform_site",
                "beat",
                "-l",
                "info",
                "-s",
                str(settings.VAR_DIR / "celerybeat-schedule"),
            ],
        }

    def _watch(self, supervisor: "Supervisor", moto, organization: Organization) -> None:
        """Restart what dies until Ctrl-C or SIGTERM (a KeyboardInterrupt) or a process that keeps dying."""
        from workspaces.moto_server import start_moto_server

        while True:
            if not supervisor.restart_dead():
                self.stderr.write("A process keeps dying; stopping the sandbox (see its log above).")
                raise SystemExit(1)
            if moto.process.poll() is not None:
                # The local cloud lives in that process's memory: a new one starts empty, and the
                # reconciler marks workspaces whose instances are gone as terminated.
                self.stderr.write(f"The local cloud exited with {moto.process.returncode}; starting a new one.")
                moto.process = start_moto_server(int(moto.url.rsplit(":", 1)[1])).process
                point_sandbox_cloud_at(organization=organization, url=moto.url)
            time.sleep(1)


class Supervisor:
    """Keeps the sandbox's processes running: one that dies is started again, as systemd or compose's
    `restart:` would in production, unless it dies too often (then something is wrong with it)."""

    MAX_RESTARTS = 5
    WINDOW_SECONDS = 60

    def __init__(self, commands: dict[str, list[str]], *, env: dict, log) -> None:
        self.commands = commands
        self.env = env
        self.log = log
        self.processes: dict[str, subprocess.Popen] = {}
        self.restarts: dict[str, list[float]] = {name: [] for name in commands}

    def start(self, name: str) -> None:
        self.processes[name] = subprocess.Popen(  # noqa: S603
            self.commands[name], cwd=settings.BASE_DIR, env=self.env, start_new_session=True
        )

    def start_all(self) -> None:
        for name in self.commands:
            self.start(name)

    def restart_dead(self) -> bool:
        """Restart what died. False when a process died more than MAX_RESTARTS times in the window."""
        now = time.monotonic()
        for name, process in self.processes.items():
            if process.poll() is None:
                continue
            recent = [at for at in self.restarts[name] if now - at < self.WINDOW_SECONDS]
            if len(recent) >= self.MAX_RESTARTS:
                return False
            self.restarts[name] = [*recent, now]
            self.log(f"{name} exited with {process.returncode}; starting it again.")
            self.start(name)
        return True

    def stop_all(self, *, also: list[subprocess.Popen] = (), grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop every process (and `also`, e.g. the local cloud) within `grace` seconds plus a moment."""
        stop_process_groups([*self.processes.values(), *also], grace=grace)


def stop_process_groups(processes: list[subprocess.Popen], *, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM each process's group at once, wait up to `grace` seconds for all of them together, then SIGKILL
    the groups: that also ends what a leader leaves behind (a Celery worker's pool processes). Every process
    here was started in a session of its own, so its group is its own pid."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        process.terminate()  # the leader: a Celery worker stops its own pool
    deadline = time.monotonic() + grace
    for process in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
    for process in running:
        _signal_group(process, signal.SIGKILL)
    for process in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=1)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone already
        os.killpg(process.pid, sig)
