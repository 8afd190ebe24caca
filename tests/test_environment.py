"""environment.yml against pyproject.toml: the conda environment lists exactly what the project requires (its
dependencies and every extra) with the same version ranges, and installs the project itself."""

import os

try:
    import tomllib
except ImportError:
    import tomli as tomllib     # Python < 3.11; pytest depends on it there
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONDA_NAMES = {'pytorch': 'torch'}  # conda's name -> PyPI's, where they differ

#----------------------------------------------------------------------------

def add_requirements(table, specs, where):
    """Add name -> SpecifierSet from requirement strings; a name listed twice must carry the same range."""
    for spec in specs:
        req = Requirement(spec)
        name = canonicalize_name(CONDA_NAMES.get(req.name, req.name))
        assert table.setdefault(name, req.specifier) == req.specifier, f'{where}: {name} is {table[name]} and {req.specifier}'
    return table

def project_requirements():
    with open(os.path.join(ROOT, 'pyproject.toml'), 'rb') as f:
        project = tomllib.load(f)['project']
    table = add_requirements({}, project['dependencies'], 'pyproject.toml')
    for extra, specs in project['optional-dependencies'].items():
        add_requirements(table, specs, f'pyproject.toml [{extra}]')
    return project['requires-python'], table

def environment_requirements():
    with open(os.path.join(ROOT, 'environment.yml')) as f:
        deps = yaml.safe_load(f)['dependencies']
    pip = [d['pip'] for d in deps if isinstance(d, dict)]
    assert len(pip) == 1, 'environment.yml: expected one pip: list'
    conda = [d for d in deps if isinstance(d, str)]
    python = [d for d in conda if Requirement(d).name == 'python']
    assert len(python) == 1 and 'pip' in conda, 'environment.yml: expected python and pip among the conda packages'
    editable = [d for d in pip[0] if d.startswith('-e ')]
    table = add_requirements({}, [d for d in conda if d not in python + ['pip']], 'environment.yml')
    add_requirements(table, [d for d in pip[0] if d not in editable], 'environment.yml pip')
    return Requirement(python[0]).specifier, editable, table

#----------------------------------------------------------------------------

def test_environment_matches_pyproject():
    requires_python, project = project_requirements()
    python, editable, environment = environment_requirements()
    assert python == SpecifierSet(requires_python)
    assert editable == ['-e .']
    missing = sorted(set(project) - set(environment))
    unknown = sorted(set(environment) - set(project))
    ranges = [f'{name}{environment[name]} (pyproject.toml: {name}{project[name]})' for name in sorted(set(project) & set(environment))
              if environment[name] != project[name]]
    assert not (missing or unknown or ranges), f'environment.yml lacks {missing}, adds {unknown}, differs in {ranges}'

#----------------------------------------------------------------------------
