from io import StringIO

from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.models import User
from platform_site.management.commands.sandbox import DEMO_EMAIL, DEMO_PASSWORD


def test_the_sandbox_seeds_a_demo_login_and_prints_a_working_token(db):
    out = StringIO()
    call_command("sandbox", "--seed-only", stdout=out)
    call_command("sandbox", "--seed-only", stdout=StringIO())  # idempotent
    printed = out.getvalue()
    assert DEMO_EMAIL in printed and DEMO_PASSWORD in printed
    token = next(word for word in printed.split() if word.startswith("carrel_"))

    user = User.objects.get(email=DEMO_EMAIL)
    assert user.check_password(DEMO_PASSWORD) and user.is_staff
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    projects = client.get("/api/v1/projects").json()
    assert [project["name"] for project in projects] == ["Demo Project"]
    assert projects[0]["role"] == "owner"

    browser = APIClient()
    assert browser.login(email=DEMO_EMAIL, password=DEMO_PASSWORD)
    assert browser.get("/admin/").status_code == 200


def test_the_sandbox_funds_the_demo_project_so_a_launch_moves_real_numbers(db):
    from budgets.models import Allocation, BudgetPool

    call_command("sandbox", "--seed-only", stdout=StringIO())
    call_command("sandbox", "--seed-only", stdout=StringIO())  # idempotent
    pool = BudgetPool.objects.get(organization__slug="demo-lab")
    allocation = Allocation.objects.get(pool=pool)
    assert allocation.project.name == "Demo Project"
    assert (pool.total_amount, allocation.amount) == (5000, 1000)
    assert allocation.alert_thresholds and allocation.prevent_launch_threshold
