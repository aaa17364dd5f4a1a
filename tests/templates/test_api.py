"""The template catalog over the API: loading, listing, resolved info, private templates, tenancy, deletion."""

import shutil
from io import StringIO
from urllib.parse import quote

import pytest
import yaml
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import OrgRole
from audit.models import AuditEvent
from templates.models import WorkspaceTemplate
from templates.services import CATALOG_DIR
from tests.conftest import add_org_member, assert_error, bearer_client, make_user

CATALOG_NAMES = {
    "GPU Deep Learning",
    "Python Machine Learning",
    "R Research Environment",
    "Rocky Linux 9 Base",
    "Rocky Linux 9 + Conda Stack",
    "Ubuntu 24.04 Base",
}
CONDA_STACK = "Rocky Linux 9 + Conda Stack"


def load_catalog() -> str:
    out = StringIO()
    call_command("load_templates", stdout=out)
    return out.getvalue()


@pytest.fixture
def catalog(db):
    load_catalog()


@pytest.fixture
def admin(org):
    user = make_user("admin@lab-a.example")
    add_org_member(org, user, OrgRole.ADMIN)
    return user


@pytest.fixture
def member(org):
    user = make_user("member@lab-a.example")
    add_org_member(org, user, OrgRole.MEMBER)
    return user


def info_url(reference: str) -> str:
    return f"/api/v1/templates/{quote(reference)}/info"


def create(client: APIClient, org, definition: dict):
    return client.post("/api/v1/templates", {"organization": org.pk, "definition": definition}, format="json")


def private_definition(name: str = "Lab A Genomics", **fields) -> dict:
    return {
        "name": name,
        "description": "Rocky + conda, with our aligners",
        "inherits": [CONDA_STACK],
        "packages": ["bwa", "samtools"],
        "users": [{"name": "genomics", "groups": ["wheel"]}],
        "services": [{"name": "igv", "port": 60151}],
        **fields,
    }


# --- loading the catalog -----------------------------------------------------------------------------


def test_it_loads_the_six_catalog_templates_and_is_idempotent(db):
    first = load_catalog()
    assert "6 created, 0 updated, 0 unchanged, 0 invalid" in first
    rows = WorkspaceTemplate.objects.all()
    assert {row.name for row in rows} == CATALOG_NAMES
    assert all(row.organization_id is None and row.source == WorkspaceTemplate.Source.CATALOG for row in rows)
    conda = WorkspaceTemplate.objects.get(name=CONDA_STACK)
    assert conda.slug == "rocky-linux-9-conda-stack"
    assert conda.definition["inherits"] == ["Rocky Linux 9 Base"]

    ids = set(WorkspaceTemplate.objects.values_list("pk", flat=True))
    second = load_catalog()
    assert "0 created, 0 updated, 6 unchanged, 0 invalid" in second
    assert set(WorkspaceTemplate.objects.values_list("pk", flat=True)) == ids


def test_it_updates_a_changed_catalog_template_in_place(db, tmp_path):
    shutil.copytree(CATALOG_DIR, tmp_path / "catalog")
    call_command("load_templates", directory=tmp_path / "catalog", stdout=StringIO())
    before = WorkspaceTemplate.objects.get(slug="ubuntu-24-04-base")

    path = tmp_path / "catalog" / "ubuntu-24-04-base.yaml"
    definition = yaml.safe_load(path.read_text())
    definition["description"] = "Ubuntu, refreshed"
    path.write_text(yaml.safe_dump(definition))
    out = StringIO()
    call_command("load_templates", directory=tmp_path / "catalog", stdout=out)
    assert "0 created, 1 updated, 5 unchanged" in out.getvalue()
    after = WorkspaceTemplate.objects.get(slug="ubuntu-24-04-base")
    assert after.pk == before.pk
    assert after.description == after.definition["description"] == "Ubuntu, refreshed"


def test_it_refuses_to_load_an_invalid_catalog_template(db, tmp_path):
    (tmp_path / "good.yaml").write_text(yaml.safe_dump({"name": "Good", "base_os": "ubuntu-24.04"}))
    (tmp_path / "bad.yaml").write_text(
        yaml.safe_dump({"name": "Bad", "base_os": "rocky-9", "package_manager": "apt", "packages": ["git"]})
    )
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="invalid"):
        call_command("load_templates", directory=tmp_path, stdout=out, stderr=err)
    assert "Package manager 'apt' does not fit base_os 'rocky-9'" in err.getvalue()
    assert not WorkspaceTemplate.objects.filter(name="Bad").exists()


# --- listing and info --------------------------------------------------------------------------------


def test_the_list_shows_every_catalog_template_validated(catalog, owner_client):
    response = owner_client.get("/api/v1/templates")
    assert response.status_code == 200
    listed = {item["name"]: item for item in response.json()}
    assert set(listed) == CATALOG_NAMES
    assert {item["validation_status"] for item in listed.values()} == {"validated"}
    gpu = listed["GPU Deep Learning"]
    assert gpu["source"] == "catalog" and gpu["organization"] is None
    assert gpu["inherits"] == ["Python Machine Learning"]
    assert gpu["base_os"] == "ubuntu-24.04"
    assert {"build-essential", "jupyter", "pytorch-cuda"} <= set(gpu["packages"])
    assert gpu["ports"] == [22, 8888, 6006]
    assert gpu["instance_defaults"] == {"workload": "gpu", "size": "S", "root_volume_gb": 100}


def test_validate_reports_every_template_valid(catalog, owner_client):
    body = owner_client.get("/api/v1/templates/validate").json()
    assert body["total_templates"] == 6 and body["validated"] == 6
    assert body["errors"] == []
    assert {result["status"] for result in body["validation_results"]} == {"valid"}
    assert {result["checks_passed"] for result in body["validation_results"]} == {10}


def test_info_resolves_inheritance(catalog, owner_client):
    response = owner_client.get(info_url(CONDA_STACK))
    assert response.status_code == 200
    info = response.json()
    assert info["dependency_chain"] == ["Rocky Linux 9 Base → Rocky Linux 9 + Conda Stack"]
    assert info["resolved_users"] == ["rocky", "datascientist"]
    assert info["resolved_ports"] == [22, 8888]
    assert info["validation_status"] == "validated" and info["validation_issues"] == []
    assert info["base_os"] == "rocky-9" and info["package_manager"] == "conda"
    assert info["packages_by_manager"]["dnf"][:2] == ["dnf-plugins-core", "git"]
    assert info["packages_by_manager"]["conda"] == ["jupyter", "scikit-learn", "pandas", "numpy", "matplotlib"]
    assert info["resolved_services"] == [{"name": "jupyter", "port": 8888, "description": "JupyterLab"}]
    assert info["instance_defaults"]["root_volume_gb"] == 30  # inherited from the base
    assert "miniconda3" in info["troubleshooting_guide"]


def test_info_finds_a_template_by_slug(catalog, owner_client):
    by_slug = owner_client.get("/api/v1/templates/rocky-linux-9-conda-stack/info")
    assert by_slug.status_code == 200
    assert by_slug.json()["name"] == CONDA_STACK
    assert by_slug.json() == owner_client.get(info_url(CONDA_STACK)).json()


def test_an_unknown_template_is_not_found(catalog, owner_client):
    error = assert_error(owner_client.get(info_url("Windows 95")), 404, "TEMPLATE_NOT_FOUND")
    assert "Windows 95" in error["message"]
    assert_error(owner_client.delete("/api/v1/templates/windows-95"), 404, "TEMPLATE_NOT_FOUND")


def test_templates_need_authentication(catalog):
    assert_error(APIClient().get("/api/v1/templates"), 401, "AUTHENTICATION_REQUIRED")


# --- private templates --------------------------------------------------------------------------------


def test_an_org_admin_creates_a_private_template_inheriting_a_catalog_one(catalog, org, admin):
    client = bearer_client(admin)
    response = create(client, org, private_definition())
    assert response.status_code == 201, response.content
    info = response.json()
    assert info["slug"] == "lab-a-genomics"
    assert info["dependency_chain"] == ["Rocky Linux 9 Base → Rocky Linux 9 + Conda Stack → Lab A Genomics"]
    assert info["resolved_users"] == ["rocky", "datascientist", "genomics"]
    assert info["resolved_ports"] == [22, 8888, 60151]
    assert info["packages_by_manager"]["conda"][-2:] == ["bwa", "samtools"]
    assert info["validation_status"] == "validated"

    row = WorkspaceTemplate.objects.get(slug="lab-a-genomics")
    assert row.organization == org and row.source == "organization" and row.created_by == admin
    assert AuditEvent.objects.filter(action="template.create", actor=admin, organization=org).count() == 1
    listed = {item["name"]: item for item in client.get("/api/v1/templates").json()}
    assert listed["Lab A Genomics"]["organization"] == org.pk
    assert client.get("/api/v1/templates/lab-a-genomics/info").status_code == 200


def test_a_private_template_may_inherit_another_of_its_organization(catalog, org, owner_client):
    assert create(owner_client, org, private_definition()).status_code == 201
    child = {"name": "Lab A Genomics GPU", "inherits": ["lab-a-genomics"], "ports": [443]}
    response = create(owner_client, org, child)
    assert response.status_code == 201, response.content
    assert response.json()["dependency_chain"] == [
        "Rocky Linux 9 Base → Rocky Linux 9 + Conda Stack → Lab A Genomics → Lab A Genomics GPU"
    ]
    assert response.json()["resolved_ports"] == [22, 443, 8888, 60151]


def test_a_member_cannot_create_a_template(catalog, org, member):
    assert_error(create(bearer_client(member), org, private_definition()), 403, "PERMISSION_DENIED")
    assert not WorkspaceTemplate.objects.filter(organization=org).exists()


def test_a_read_only_token_cannot_create_a_template(catalog, org, owner):
    client = bearer_client(owner, scopes=["read"])
    assert_error(create(client, org, private_definition()), 403, "INSUFFICIENT_SCOPE")


def test_an_invalid_template_is_refused_with_its_issues(catalog, org, owner_client):
    definition = private_definition(package_manager="apt", users=["root"])
    error = assert_error(create(owner_client, org, definition), 400, "TEMPLATE_INVALID")
    assert "Package manager 'apt' does not fit base_os 'rocky-9'" in error["details"]
    assert "User name 'root' is reserved" in error["details"]
    assert {"definition.package_manager", "definition.users"} <= set(error["fields"])
    assert not WorkspaceTemplate.objects.filter(organization=org).exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"users": [{"groups": ["wheel"]}]},
        {"users": [7]},
        {"services": [{"port": 80}]},
        {"packages": [{"name": "bwa"}]},
        {"inherits": [{"name": CONDA_STACK}]},
        {"slug": "has/slash"},
        {"name": "n" * 121},
        {"ports": [0, 70000, "22"]},
    ],
)
def test_a_malformed_template_is_a_400_not_a_crash(catalog, org, owner_client, fields):
    assert_error(create(owner_client, org, private_definition(**fields)), 400, "TEMPLATE_INVALID")
    assert not WorkspaceTemplate.objects.filter(organization=org).exists()


def test_a_template_needs_a_name_and_an_organization(catalog, org, owner_client):
    error = assert_error(create(owner_client, org, {"inherits": [CONDA_STACK]}), 400)
    assert "definition.name" in error["fields"]
    error = assert_error(owner_client.post("/api/v1/templates", {"definition": {}}, format="json"), 400)
    assert "organization" in error["fields"]


def test_a_duplicate_name_is_taken(catalog, org, owner_client):
    assert create(owner_client, org, private_definition()).status_code == 201
    assert_error(create(owner_client, org, private_definition()), 409, "NAME_TAKEN")
    # A catalog template's name or slug cannot be reused either.
    assert_error(create(owner_client, org, private_definition(name=CONDA_STACK)), 409, "NAME_TAKEN")
    assert_error(create(owner_client, org, private_definition(name="Rocky Linux 9 Conda Stack")), 409, "NAME_TAKEN")
    assert WorkspaceTemplate.objects.filter(organization=org).count() == 1


def test_another_organizations_template_is_invisible(catalog, org, owner_client, outsider, outsider_client):
    other_org = outsider.memberships.get().organization
    response = create(outsider_client, other_org, private_definition(name="Lab B Secret"))
    assert response.status_code == 201, response.content

    assert "Lab B Secret" not in {item["name"] for item in owner_client.get("/api/v1/templates").json()}
    assert_error(owner_client.get(info_url("Lab B Secret")), 404, "TEMPLATE_NOT_FOUND")
    assert_error(owner_client.get("/api/v1/templates/lab-b-secret/info"), 404, "TEMPLATE_NOT_FOUND")
    assert_error(owner_client.delete("/api/v1/templates/lab-b-secret"), 404, "TEMPLATE_NOT_FOUND")
    validated = owner_client.get("/api/v1/templates/validate").json()
    assert validated["total_templates"] == 6
    # Nor can it be inherited from, or created in, an organization one is not a member of.
    error = assert_error(create(owner_client, org, {"name": "Copycat", "inherits": ["Lab B Secret"]}), 400)
    assert error["code"] == "TEMPLATE_INVALID" and "unknown template 'Lab B Secret'" in error["details"]
    assert_error(create(owner_client, other_org, private_definition()), 404, "ORGANIZATION_NOT_FOUND")
    # The same name is free in another organization, and each sees its own.
    assert create(owner_client, org, private_definition(name="Lab B Secret", description="Ours")).status_code == 201
    assert WorkspaceTemplate.objects.filter(name="Lab B Secret").count() == 2
    assert owner_client.get(info_url("Lab B Secret")).json()["description"] == "Ours"
    assert outsider_client.get(info_url("Lab B Secret")).json()["description"] == "Rocky + conda, with our aligners"


# --- deletion ------------------------------------------------------------------------------------------


def test_an_admin_deletes_a_private_template(catalog, org, admin):
    client = bearer_client(admin)
    create(client, org, private_definition())
    assert client.delete("/api/v1/templates/lab-a-genomics").status_code == 204
    assert not WorkspaceTemplate.objects.filter(slug="lab-a-genomics").exists()
    assert_error(client.get("/api/v1/templates/lab-a-genomics/info"), 404, "TEMPLATE_NOT_FOUND")
    assert AuditEvent.objects.filter(action="template.delete", actor=admin, organization=org).count() == 1


def test_a_member_cannot_delete_a_private_template(catalog, org, owner_client, member):
    create(owner_client, org, private_definition())
    assert_error(bearer_client(member).delete("/api/v1/templates/lab-a-genomics"), 403, "PERMISSION_DENIED")
    assert WorkspaceTemplate.objects.filter(slug="lab-a-genomics").exists()


def test_a_catalog_template_cannot_be_deleted(catalog, owner_client):
    assert_error(owner_client.delete(f"/api/v1/templates/{quote(CONDA_STACK)}"), 403, "PERMISSION_DENIED")
    assert_error(owner_client.delete("/api/v1/templates/ubuntu-24-04-base"), 403, "PERMISSION_DENIED")
    assert WorkspaceTemplate.objects.count() == 6


def test_a_template_other_templates_inherit_is_in_use(catalog, org, owner_client):
    create(owner_client, org, private_definition())
    create(owner_client, org, {"name": "Derived", "inherits": ["Lab A Genomics"]})
    error = assert_error(owner_client.delete("/api/v1/templates/lab-a-genomics"), 409, "TEMPLATE_IN_USE")
    assert "Derived" in error["message"]
    # Delete the child first, then the parent is free.
    assert owner_client.delete("/api/v1/templates/derived").status_code == 204
    assert owner_client.delete("/api/v1/templates/lab-a-genomics").status_code == 204
    assert not WorkspaceTemplate.objects.filter(organization=org).exists()


def test_inheritance_by_slug_also_counts_as_in_use(catalog, org, owner_client):
    create(owner_client, org, private_definition())
    create(owner_client, org, {"name": "Derived", "inherits": ["lab-a-genomics"]})
    assert_error(owner_client.delete(info_url("Lab A Genomics")[: -len("/info")]), 409, "TEMPLATE_IN_USE")
