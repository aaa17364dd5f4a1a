"""Run the whole sandbox in one terminal: migrate, seed a demo login, then web + worker + beat.

No PostgreSQL, Redis or Docker: SQLite, a file cache and a filesystem Celery broker under var/.
A process that dies is started again (the worker, beat, the web server, the local cloud); Ctrl-C stops
every process.
"""

import os
import signal
import subprocess
import sys
import time

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Membership, Organization, OrgRole, User
from accounts.services import token_create
from projects.models import Project, ProjectMember, ProjectRole
from templates.services import template_catalog_load
from workspaces.models import CloudAccount
from workspaces.moto_server import SANDBOX_AWS_ENV, sandbox_image_id, start_moto_server

DEMO_EMAIL = "demo@carrel.localhost"
DEMO_PASSWORD = "carrel-sandbox-demo"  # sandbox only; printed on start


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
    template_catalog_load()
    return user, organization, project


def point_sandbox_cloud_at(*, organization: Organization, url: str) -> CloudAccount:
    """The demo organization's cloud account is the local moto server (its port may change per start)."""
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
        moto = None
        if not seed_only:
            # Links in e-mails (invitations, sign-up) point at this sandbox's web server.
            os.environ.setdefault("CARREL_PUBLIC_URL", base)
            os.environ.update({key: os.environ.get(key, value) for key, value in SANDBOX_AWS_ENV.items()})
            moto = start_moto_server(cloud_port or port + 1)
            point_sandbox_cloud_at(organization=organization, url=moto.url)
        self.stdout.write(
            self.style.SUCCESS("\nCarrel sandbox\n")
            + f"  Console / API:  {base}/          (API docs: {base}/api/v1/docs/)\n"
            + f"  Admin:          {base}/admin/\n"
            + f"  Demo login:     {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
            + f"  Organization:   {organization.name} ({organization.id})\n"
            + f"  Project:        {project.name} ({project.id})\n"
            + f"  API token:      {issued.secret}\n"
            + f"  Try:            curl -H 'Authorization: Bearer {issued.secret}' {base}/api/v1/projects\n"
            + (
                f"  Local cloud:    {moto.url}  (a moto EC2 server; templates: {base}/api/v1/templates)\n"
                + "  Launch:         curl -H 'Authorization: Bearer "
                + issued.secret
                + "' -H 'Content-Type: application/json' -d "
                + '\'{"name": "my-box", "template": "Python Machine Learning", "size": "S"}\' '
                + f"{base}/api/v1/instances/launch\n"
                if moto
                else ""
            )
            + f"  Data:           {settings.VAR_DIR}  (e-mail is printed below)\n"
        )
        if seed_only:
            return
        try:
            self._run(host, port, moto, organization)
        finally:
            moto.stop()

    def _run(self, host: str, port: int, moto, organization: Organization) -> None:
        python = sys.executable
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        commands = {
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
        supervisor = Supervisor(commands, env=env, log=self.stderr.write)
        supervisor.start_all()

        def stop(*_):
            supervisor.stop_all()

        signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
        try:
            while True:
                if not supervisor.restart_dead():
                    self.stderr.write("A process keeps dying; stopping the sandbox (see its log above).")
                    stop()
                    sys.exit(1)
                if moto.process.poll() is not None:
                    # The local cloud lives in that process's memory: a new one starts empty, and the
                    # reconciler marks workspaces whose instances are gone as terminated.
                    self.stderr.write(f"The local cloud exited with {moto.process.returncode}; starting a new one.")
                    moto.process = start_moto_server(int(moto.url.rsplit(":", 1)[1])).process
                    point_sandbox_cloud_at(organization=organization, url=moto.url)
                time.sleep(1)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping the sandbox…")
            stop()


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

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.time() + 10
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
