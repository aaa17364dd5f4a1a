"""templates.resolution as pure functions: every merge rule of the module docstring, and every validation check."""

import pytest

from templates.resolution import ResolutionError, ancestry, resolve, slugify_name, validate

UBUNTU = {
    "name": "Ubuntu Base",
    "slug": "ubuntu-base",
    "description": "Ubuntu with tools",
    "base_os": "ubuntu-24.04",
    "package_manager": "apt",
    "packages": ["git", "curl", "tmux"],
    "users": [{"name": "ubuntu", "groups": ["sudo"]}],
    "ports": [22],
    "instance_defaults": {"workload": "general", "size": "M", "root_volume_gb": 30},
    "idle_defaults": {"profile": "batch", "idle_threshold_minutes": 60, "action": "hibernate"},
    "troubleshooting_guide": "Log in as ubuntu.",
}
ROCKY = {
    "name": "Rocky Base",
    "base_os": "rocky-9",
    "package_manager": "dnf",
    "packages": ["git", "gcc"],
    "users": [{"name": "rocky", "groups": ["wheel"]}],
    "ports": [22],
}


def lookup(*definitions: dict) -> dict[str, dict]:
    """What selectors.definitions_by_reference builds: every definition by name and by slug."""
    catalog = {}
    for definition in definitions:
        catalog[definition["name"]] = definition
        catalog[definition.get("slug") or slugify_name(definition["name"])] = definition
    return catalog


def child_of(*parents: str, **fields) -> dict:
    return {"name": "Child", "inherits": list(parents), **fields}


def resolved(definition: dict, *others: dict):
    return resolve(definition, lookup(definition, *others))


def issues(definition: dict, *others: dict) -> list[tuple[str, str]]:
    report = validate(definition, lookup(*others))
    return [(issue.check, issue.message) for issue in report.issues]


def failed_checks(definition: dict, *others: dict) -> set[str]:
    return {check for check, _ in issues(definition, *others)}


# --- merge rules -------------------------------------------------------------------------------


def test_a_template_without_parents_resolves_to_itself():
    result = resolved(UBUNTU)
    assert result.name == "Ubuntu Base" and result.slug == "ubuntu-base"
    assert result.base_os == "ubuntu-24.04" and result.package_manager == "apt"
    assert result.packages_by_manager == {"apt": ["git", "curl", "tmux"]}
    assert result.user_names == ["ubuntu"] and result.ports == [22]
    assert result.dependency_chain == ["Ubuntu Base"]
    assert validate(UBUNTU, lookup(UBUNTU)).valid


def test_own_fields_are_never_inherited():
    result = resolved(child_of("Ubuntu Base"), UBUNTU)
    assert result.name == "Child"
    assert result.slug == "child"  # derived from the name, not the parent's slug
    assert result.description == ""
    assert result.troubleshooting_guide == ""
    assert result.inherits == ["Ubuntu Base"]
    mine = resolved(child_of("Ubuntu Base", description="Mine", troubleshooting_guide="Ask Ada."), UBUNTU)
    assert (mine.description, mine.troubleshooting_guide) == ("Mine", "Ask Ada.")


def test_base_os_and_package_manager_come_from_the_child_else_the_last_parent_that_sets_one():
    debian = {"name": "Debian", "base_os": "debian-12", "package_manager": "apt"}
    bare = {"name": "Bare", "users": ["alice"]}
    assert resolved(child_of("Ubuntu Base", "Bare"), UBUNTU, bare).base_os == "ubuntu-24.04"
    assert resolved(child_of("Ubuntu Base", "Debian"), UBUNTU, debian).base_os == "debian-12"
    assert resolved(child_of("Debian", "Ubuntu Base"), UBUNTU, debian).base_os == "ubuntu-24.04"
    own = resolved(child_of("Ubuntu Base", base_os="debian-12", package_manager="pip"), UBUNTU)
    assert (own.base_os, own.package_manager) == ("debian-12", "pip")
    assert resolved(child_of("Ubuntu Base"), UBUNTU).package_manager == "apt"


def test_packages_are_grouped_per_manager_and_deduplicated_keeping_the_first():
    child = child_of("Ubuntu Base", package_manager="conda", packages=["numpy", "git", "numpy", "pandas"])
    result = resolved(child, UBUNTU)
    assert result.package_manager == "conda"
    assert result.packages_by_manager == {"apt": ["git", "curl", "tmux"], "conda": ["numpy", "git", "pandas"]}
    # The flat list keeps every package once, parents first.
    assert result.packages == ["git", "curl", "tmux", "numpy", "pandas"]


def test_a_child_without_a_manager_adds_to_its_parents_manager():
    result = resolved(child_of("Ubuntu Base", packages=["tmux", "vim", "git", "htop"]), UBUNTU)
    assert result.packages_by_manager == {"apt": ["git", "curl", "tmux", "vim", "htop"]}


def test_each_parents_packages_stay_with_that_parents_own_manager():
    # Two parents of one base: the second inherits apt, so its packages are apt packages even though
    # the first parent (merged before it) switched to conda.
    conda = {"name": "Conda", "inherits": ["Ubuntu Base"], "package_manager": "conda", "packages": ["numpy"]}
    tools = {"name": "Tools", "inherits": ["Ubuntu Base"], "packages": ["htop", "git"]}
    result = resolved(child_of("Conda", "Tools", packages=["scipy"]), UBUNTU, conda, tools)
    assert result.dependency_chain == ["Ubuntu Base", "Conda", "Tools", "Child"]
    assert result.packages_by_manager == {"apt": ["git", "curl", "tmux", "htop"], "conda": ["numpy", "scipy"]}
    assert result.package_manager == "conda"


def test_users_merge_by_name_with_a_union_of_groups_and_an_overridable_shell():
    parent = {
        "name": "P",
        "base_os": "ubuntu-24.04",
        "users": [{"name": "ada", "groups": ["sudo", "docker"]}, {"name": "bob", "groups": ["users"]}],
    }
    child = child_of(
        "P",
        users=[{"name": "ada", "groups": ["docker", "video"], "shell": "/bin/zsh"}, "carol", {"name": "bob"}],
    )
    result = resolved(child, parent)
    assert result.user_names == ["ada", "bob", "carol"]
    by_name = {user["name"]: user for user in result.users}
    assert by_name["ada"] == {"name": "ada", "groups": ["sudo", "docker", "video"], "shell": "/bin/zsh"}
    assert by_name["bob"] == {"name": "bob", "groups": ["users"]}
    assert by_name["carol"] == {"name": "carol", "groups": []}


def test_services_merge_by_name_and_the_child_overrides_port_and_description():
    parent = {
        "name": "P",
        "base_os": "ubuntu-24.04",
        "services": [
            {"name": "jupyter", "port": 8888, "description": "Jupyter"},
            {"name": "rstudio", "port": 8787, "description": "RStudio"},
        ],
    }
    child = child_of("P", services=[{"name": "jupyter", "port": 9999}, {"name": "tensorboard", "port": 6006}])
    result = resolved(child, parent)
    assert result.service_names == ["jupyter", "rstudio", "tensorboard"]
    assert result.services[0] == {"name": "jupyter", "port": 9999, "description": "Jupyter"}
    relabelled = resolved(child_of("P", services=[{"name": "rstudio", "description": "R"}]), parent)
    assert relabelled.services[1] == {"name": "rstudio", "port": 8787, "description": "R"}


def test_ports_are_the_union_of_template_ports_and_final_service_ports():
    parent = {"name": "P", "base_os": "ubuntu-24.04", "ports": [22, 443], "services": [{"name": "web", "port": 8080}]}
    child = child_of("P", ports=[443, 5432, 22], services=[{"name": "web", "port": 9090}, {"name": "db", "port": 5432}])
    result = resolved(child, parent)
    assert result.ports == [22, 443, 5432, 9090]
    assert 8080 not in result.ports  # the overridden service port is gone


def test_instance_and_idle_defaults_merge_key_by_key_with_the_child_winning():
    child = child_of(
        "Ubuntu Base",
        instance_defaults={"size": "L", "spot": True},
        idle_defaults={"idle_threshold_minutes": 15, "cpu_threshold": 5},
    )
    result = resolved(child, UBUNTU)
    assert result.instance_defaults == {"workload": "general", "size": "L", "root_volume_gb": 30, "spot": True}
    assert result.idle_defaults == {
        "profile": "batch",
        "idle_threshold_minutes": 15,
        "action": "hibernate",
        "cpu_threshold": 5,
    }


def test_parameters_merge_by_name_and_the_child_definition_wins_whole():
    parent = {
        "name": "P",
        "base_os": "ubuntu-24.04",
        "parameters": {
            "python": {"type": "choice", "choices": ["3.11", "3.12"], "default": "3.12", "description": "Python"},
            "gpus": {"type": "integer", "default": 1},
        },
    }
    child = child_of("P", parameters={"python": {"type": "string"}, "debug": {"type": "boolean", "default": False}})
    result = resolved(child, parent)
    assert result.parameters == {
        "python": {"type": "string"},
        "gpus": {"type": "integer", "default": 1},
        "debug": {"type": "boolean", "default": False},
    }


def test_multiple_parents_merge_in_the_order_given_then_the_child():
    first = {"name": "First", "base_os": "ubuntu-24.04", "instance_defaults": {"size": "S", "workload": "compute"}}
    second = {"name": "Second", "instance_defaults": {"size": "XL"}, "users": ["bob"], "ports": [80]}
    result = resolved(child_of("First", "Second", users=["alice"], ports=[22]), first, second)
    assert result.dependency_chain == ["First", "Second", "Child"]
    assert result.instance_defaults == {"size": "XL", "workload": "compute"}
    assert result.user_names == ["bob", "alice"]
    assert result.ports == [80, 22]
    reverse = resolved(child_of("Second", "First"), first, second)
    assert reverse.dependency_chain == ["Second", "First", "Child"]
    assert reverse.instance_defaults["size"] == "S"


def test_parents_may_be_named_by_slug():
    result = resolved(child_of("ubuntu-base"), UBUNTU)
    assert result.dependency_chain == ["Ubuntu Base", "Child"]
    assert result.base_os == "ubuntu-24.04"


def test_diamond_inheritance_merges_the_shared_ancestor_once_at_its_first_position():
    left = {"name": "Left", "inherits": ["Ubuntu Base"], "users": ["lefty"], "packages": ["vim"]}
    right = {"name": "Right", "inherits": ["ubuntu-base"], "users": ["righty"], "packages": ["git", "emacs"]}
    child = child_of("Left", "Right")
    chain = ancestry(child, lookup(child, UBUNTU, left, right))
    assert [layer["name"] for layer in chain] == ["Ubuntu Base", "Left", "Right", "Child"]
    result = resolved(child, UBUNTU, left, right)
    assert result.user_names == ["ubuntu", "lefty", "righty"]
    assert result.packages_by_manager == {"apt": ["git", "curl", "tmux", "vim", "emacs"]}
    assert validate(child, lookup(UBUNTU, left, right)).valid


def test_nothing_a_child_sets_is_lost():
    child = child_of(
        "Ubuntu Base",
        package_manager="pip",
        packages=["requests", "rich"],
        users=[{"name": "ubuntu", "groups": ["video"], "shell": "/bin/fish"}, {"name": "eve", "groups": ["lab"]}],
        services=[{"name": "api", "port": 8000, "description": "API"}],
        ports=[8443],
        instance_defaults={"instance_type": "c5.large", "ami": "ami-123"},
        idle_defaults={"action": "stop", "gpu_threshold": 3},
        parameters={"mode": {"type": "choice", "choices": ["a", "b"], "default": "b"}},
    )
    result = resolved(child, UBUNTU)
    assert result.package_manager == "pip"
    assert result.packages_by_manager["pip"] == ["requests", "rich"]
    ubuntu = result.users[0]
    assert "video" in ubuntu["groups"] and ubuntu["shell"] == "/bin/fish"
    assert {"name": "eve", "groups": ["lab"]} in result.users
    assert {"name": "api", "port": 8000, "description": "API"} in result.services
    assert {8443, 8000} <= set(result.ports)
    assert result.instance_defaults["instance_type"] == "c5.large" and result.instance_defaults["ami"] == "ami-123"
    assert result.idle_defaults["action"] == "stop" and result.idle_defaults["gpu_threshold"] == 3
    assert result.parameters["mode"]["default"] == "b"
    # ...and nothing the parent set is lost either.
    assert result.packages_by_manager["apt"] == UBUNTU["packages"] and "sudo" in ubuntu["groups"]
    assert 22 in result.ports and result.instance_defaults["root_volume_gb"] == 30


def test_resolving_leaves_the_definitions_untouched():
    child = child_of("Ubuntu Base", users=[{"name": "ubuntu", "groups": ["video"]}], packages=["vim"])
    before = repr(UBUNTU), repr(child)
    resolved(child, UBUNTU)
    resolved(child, UBUNTU)
    assert (repr(UBUNTU), repr(child)) == before


# --- validation --------------------------------------------------------------------------------------


def test_a_valid_template_passes_every_check():
    report = validate(child_of("Ubuntu Base", package_manager="conda", packages=["numpy"]), lookup(UBUNTU))
    assert report.valid and report.issues == []
    assert report.checks_run == report.checks_passed == 10


def test_a_system_package_manager_must_fit_the_base_os():
    apt_on_rocky = {"name": "Bad", "base_os": "rocky-9", "package_manager": "apt", "packages": ["git"]}
    found = issues(apt_on_rocky)
    assert ("package_manager", "Package manager 'apt' does not fit base_os 'rocky-9'") in found
    assert failed_checks(child_of("Rocky Base", package_manager="apt", packages=["vim"]), ROCKY) == {"package_manager"}
    assert failed_checks(child_of("Ubuntu Base", package_manager="dnf"), UBUNTU) == {"package_manager"}
    # Moving a dnf template onto Ubuntu leaves its dnf packages stranded.
    assert failed_checks(child_of("Rocky Base", base_os="ubuntu-24.04"), ROCKY) == {"package_manager"}
    # Language-level managers run anywhere.
    for manager in ("conda", "pip", "spack"):
        assert validate(child_of("Rocky Base", package_manager=manager, packages=["x"]), lookup(ROCKY)).valid
    assert failed_checks({"name": "Y", "base_os": "rocky-9", "package_manager": "brew"}) == {"package_manager"}


def test_base_os_is_required_and_must_be_known():
    assert ("base_os", "No base_os, in the template or its parents") in issues({"name": "Nothing"})
    assert failed_checks({"name": "Mac", "base_os": "macos-14"}) == {"base_os"}
    assert failed_checks({"name": "Lost", "packages": ["git"]}) >= {"base_os", "package_manager"}


@pytest.mark.parametrize("port", [0, 70000, "22", -1, 22.0, True])
def test_ports_must_be_integers_from_1_to_65535(port):
    assert failed_checks(child_of("Ubuntu Base", ports=[port]), UBUNTU) == {"ports"}
    assert failed_checks(child_of("Ubuntu Base", services=[{"name": "web", "port": port}]), UBUNTU) == {"ports"}


def test_boundary_ports_are_valid():
    assert validate(child_of("Ubuntu Base", ports=[1, 65535]), lookup(UBUNTU)).valid


@pytest.mark.parametrize("name", ["Root", "1abc", "has space", "a" * 33, "", "bad$name", 5])
def test_user_names_must_be_posix_names(name):
    assert failed_checks(child_of("Ubuntu Base", users=[{"name": name}]), UBUNTU) == {"users"}


@pytest.mark.parametrize("name", ["root", "daemon", "bin", "sys", "nobody"])
def test_reserved_user_names_are_refused(name):
    found = issues(child_of("Ubuntu Base", users=[name]), UBUNTU)
    assert found == [("users", f"User name '{name}' is reserved")]


def test_good_user_names_pass():
    users = ["_svc", "ada", "data-scientist", "a" * 32, {"name": "x1", "groups": "wheel"}]
    assert validate(child_of("Ubuntu Base", users=users), lookup(UBUNTU)).valid


def test_an_unknown_parent_is_reported():
    found = issues(child_of("Ubuntu Base", "Nowhere"), UBUNTU)
    assert found == [("inheritance", "'Child' inherits unknown template 'Nowhere'")]
    with pytest.raises(ResolutionError, match="unknown template 'Nowhere'"):
        resolve(child_of("Nowhere"), {})


def test_a_two_template_cycle_is_reported():
    a = {"name": "A", "inherits": ["B"], "base_os": "ubuntu-24.04"}
    b = {"name": "B", "inherits": ["A"]}
    found = issues(a, a, b)
    assert found == [("inheritance", "Inheritance cycle: A → B → A")]
    with pytest.raises(ResolutionError, match="cycle"):
        resolve(b, lookup(a, b))


def test_a_template_inheriting_itself_is_a_cycle():
    selfish = {"name": "Selfish", "inherits": ["Selfish"], "base_os": "ubuntu-24.04"}
    assert issues(selfish, selfish) == [("inheritance", "Inheritance cycle: Selfish → Selfish")]
    by_slug = {"name": "Selfish", "slug": "me", "inherits": ["me"], "base_os": "ubuntu-24.04"}
    assert failed_checks(by_slug, by_slug) == {"inheritance"}


def test_a_longer_cycle_further_up_is_reported():
    a = {"name": "A", "inherits": ["B"]}
    b = {"name": "B", "inherits": ["C"]}
    c = {"name": "C", "inherits": ["B"]}
    assert issues(child_of("A"), a, b, c) == [("inheritance", "Inheritance cycle: Child → A → B → C → B")]


def test_unknown_top_level_keys_are_refused():
    found = issues(child_of("Ubuntu Base", colour="blue", gpus=2), UBUNTU)
    assert found == [("schema", "Unknown keys: colour, gpus")]


def test_unknown_user_service_and_parameter_keys_are_refused():
    assert failed_checks(child_of("Ubuntu Base", users=[{"name": "ada", "password": "x"}]), UBUNTU) == {"users"}
    assert failed_checks(child_of("Ubuntu Base", services=[{"name": "web", "port": 80, "tls": True}]), UBUNTU) == {
        "services"
    }
    assert failed_checks(child_of("Ubuntu Base", parameters={"p": {"type": "string", "min": 1}}), UBUNTU) == {
        "parameters"
    }
    assert failed_checks(child_of("Ubuntu Base", instance_defaults={"cores": 4}), UBUNTU) == {"instance_defaults"}
    assert failed_checks(child_of("Ubuntu Base", idle_defaults={"after": 5}), UBUNTU) == {"idle_defaults"}
    found = issues(child_of("Ubuntu Base", users=[{"name": "ada", "password": "x"}]), UBUNTU)
    assert found == [("users", "Unknown keys for user 'ada': password")]


def test_a_choice_default_must_be_one_of_its_choices():
    bad = {"python": {"type": "choice", "choices": ["3.11", "3.12"], "default": "2.7"}}
    assert issues(child_of("Ubuntu Base", parameters=bad), UBUNTU) == [
        ("parameters", "The default of 'python' is not one of its choices")
    ]
    assert failed_checks(child_of("Ubuntu Base", parameters={"p": {"type": "choice"}}), UBUNTU) == {"parameters"}
    assert failed_checks(child_of("Ubuntu Base", parameters={"p": {"type": "float"}}), UBUNTU) == {"parameters"}
    assert failed_checks(child_of("Ubuntu Base", parameters={"p": "string"}), UBUNTU) == {"parameters"}
    good = {"python": {"type": "choice", "choices": ["3.11", "3.12"], "default": "3.11"}}
    assert validate(child_of("Ubuntu Base", parameters=good), lookup(UBUNTU)).valid


def test_instance_and_idle_defaults_are_checked():
    assert failed_checks(child_of("Ubuntu Base", instance_defaults={"size": "XXL"}), UBUNTU) == {"instance_defaults"}
    assert failed_checks(child_of("Ubuntu Base", instance_defaults={"workload": "mining"}), UBUNTU) == {
        "instance_defaults"
    }
    assert failed_checks(child_of("Ubuntu Base", instance_defaults={"root_volume_gb": 4}), UBUNTU) == {
        "instance_defaults"
    }
    assert failed_checks(child_of("Ubuntu Base", idle_defaults={"action": "delete"}), UBUNTU) == {"idle_defaults"}
    assert failed_checks(child_of("Ubuntu Base", idle_defaults={"idle_threshold_minutes": 0}), UBUNTU) == {
        "idle_defaults"
    }
    pinned = child_of("Ubuntu Base", instance_defaults={"instance_type": "t3.huge"})
    assert validate(pinned, lookup(UBUNTU)).valid  # no instance-type list given: not checked
    report = validate(pinned, lookup(UBUNTU), instance_types={"t3.medium"})
    assert [issue.check for issue in report.issues] == ["instance_defaults"]


def test_the_shape_of_the_definition_is_checked():
    assert ("schema", "'name' is required") in issues({"base_os": "ubuntu-24.04"})
    assert failed_checks({"name": 7, "base_os": "ubuntu-24.04"}) == {"schema"}
    assert failed_checks(child_of("Ubuntu Base", packages="git"), UBUNTU) == {"schema"}
    assert failed_checks(child_of("Ubuntu Base", ports=22), UBUNTU) == {"schema"}
    assert failed_checks(child_of("Ubuntu Base", parameters=["p"]), UBUNTU) == {"schema"}
    assert failed_checks(child_of("Ubuntu Base", base_os=["ubuntu-24.04"]), UBUNTU) == {"schema"}
    assert failed_checks(child_of("Ubuntu Base", slug="Not A Slug/"), UBUNTU) == {"schema"}
    assert failed_checks({"name": "x" * 121, "base_os": "ubuntu-24.04"}) == {"schema"}
    assert failed_checks({"name": "+++", "slug": "", "base_os": "ubuntu-24.04"}) == {"schema"}


@pytest.mark.parametrize(
    ("fields", "check"),
    [
        ({"users": [5]}, "users"),
        ({"users": [{"groups": ["sudo"]}]}, "users"),
        ({"users": [{"name": "ada", "groups": [{"x": 1}]}]}, "users"),
        ({"services": [{"port": 80}]}, "services"),
        ({"services": [["web"]]}, "services"),
        ({"services": [{"name": "web", "port": {"n": 1}}]}, "ports"),
        ({"packages": [{"name": "git"}]}, "schema"),
        ({"inherits": [{"name": "Ubuntu Base"}]}, "schema"),
        ({"package_manager": ["apt"]}, "schema"),
    ],
)
def test_malformed_entries_are_reported_not_crashed_on(fields, check):
    definition = {"name": "Odd", "base_os": "ubuntu-24.04", "package_manager": "apt", **fields}
    assert failed_checks(definition, UBUNTU) == {check}


def test_every_failing_check_is_reported_together():
    definition = child_of(
        "Rocky Base",
        package_manager="apt",
        users=["root"],
        idle_defaults={"action": "delete"},
        parameters={"p": {"type": "choice", "choices": ["a"], "default": "z"}},
    )
    report = validate(definition, lookup(ROCKY))
    assert {issue.check for issue in report.issues} == {"package_manager", "users", "idle_defaults", "parameters"}
    assert not report.valid
    assert report.checks_passed == report.checks_run - 4


def test_slugs_are_derived_from_names():
    assert slugify_name("Rocky Linux 9 + Conda Stack") == "rocky-linux-9-conda-stack"
    assert slugify_name("  R / Research  ") == "r-research"
    assert len(slugify_name("x" * 200)) == 80
