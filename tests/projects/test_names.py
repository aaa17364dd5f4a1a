"""Project names and descriptions: no control or bidirectional-override characters, whoever writes them."""

import pytest

from platform_site.errors import ValidationFailed
from projects import services
from tests.conftest import assert_error

BAD = ["Gen\nomics", "Gen\u202eomics", "Gen\x00omics"]


@pytest.mark.parametrize("name", BAD)
def test_it_refuses_a_project_name_with_control_or_bidi_characters(owner_client, org, project, name):
    error = assert_error(owner_client.post("/api/v1/projects", {"name": name}, format="json"), 400, "VALIDATION_ERROR")
    assert "name" in error["fields"]
    response = owner_client.patch(f"/api/v1/projects/{project.id}", {"name": name}, format="json")
    assert "name" in assert_error(response, 400, "VALIDATION_ERROR")["fields"]
    project.refresh_from_db()
    assert project.name == "Genomics"


@pytest.mark.parametrize("name", BAD)
def test_the_services_refuse_them_for_every_caller(owner, org, project, name):
    with pytest.raises(ValidationFailed):
        services.project_create(actor=owner, organization=org, name=name)
    with pytest.raises(ValidationFailed):
        services.project_update(actor=owner, project=project, name=name)


@pytest.mark.parametrize("description", ["Line\u202eevil", "Nul\x00byte", "Bell\x07"])
def test_it_refuses_a_description_with_control_or_bidi_characters(owner, org, project, description):
    with pytest.raises(ValidationFailed) as refused:
        services.project_create(actor=owner, organization=org, name="Other", description=description)
    assert "description" in refused.value.fields
    with pytest.raises(ValidationFailed):
        services.project_update(actor=owner, project=project, description=description)


def test_a_description_may_have_several_lines_and_names_are_trimmed(owner_client, org):
    created = owner_client.post(
        "/api/v1/projects", {"name": "  Climate  ", "description": "Line one\nLine two\tend"}, format="json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["name"] == "Climate"
    assert created.json()["description"] == "Line one\nLine two\tend"
