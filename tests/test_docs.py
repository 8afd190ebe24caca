"""The documentation against the repository: every relative link of the Markdown files leads to a file (and heading)
that exists inside the repository, nothing refers to files outside it, the README's families table names every
preset and overlay, and docs/training.md's preset table states each preset's values as configs/ holds them."""

import glob
import os
import re

import train
from training import presets

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = sorted({os.path.relpath(path, REPO_ROOT) for pattern in ['*.md', 'docs/*.md', '*/README.md'] for path in glob.glob(os.path.join(REPO_ROOT, pattern))})

#----------------------------------------------------------------------------

def read(path: str) -> str:
    with open(os.path.join(REPO_ROOT, path), encoding='utf-8') as f:
        return f.read()

def prose(text: str) -> str:
    """The text without fenced code blocks and inline code spans, where '#' and '[..](..)' are not Markdown."""
    text = re.sub(r'^```.*?^```[^\n]*$', '', text, flags=re.M | re.S)
    return re.sub(r'`[^`\n]*`', '', text)

def anchors(text: str):
    """The anchors GitHub gives the headings: lower case, punctuation other than '-' and '_' dropped, spaces as
    '-', a repeated anchor numbered -1, -2, ..."""
    seen = {}
    for heading in re.findall(r'^#{1,6} +(.+?) *$', re.sub(r'^```.*?^```[^\n]*$', '', text, flags=re.M | re.S), flags=re.M):
        slug = re.sub(r'[^\w\- ]', '', heading.lower()).replace(' ', '-')
        seen[slug] = seen.get(slug, -1) + 1
        yield slug if seen[slug] == 0 else f'{slug}-{seen[slug]}'

def relative_links(text: str) -> list:
    """Targets of the Markdown links and images that are not URLs."""
    return [target for target in re.findall(r'\]\(([^)\s]+)\)', prose(text)) if not re.match(r'[a-z]+:', target)]

def test_docs_found():
    assert {'README.md', 'docs/training.md', 'docs/architecture.md', 'checkpoints/README.md'} <= set(DOCS)

def test_relative_links_resolve():
    broken = []
    for doc in DOCS:
        for target in relative_links(read(doc)):
            path, _, anchor = target.partition('#')
            full = os.path.normpath(os.path.join(REPO_ROOT, os.path.dirname(doc), path)) if path else os.path.join(REPO_ROOT, doc)
            if os.path.relpath(full, REPO_ROOT).startswith('..') or not os.path.exists(full):
                broken.append(f'{doc}: {target} (no such file in the repository)')
            elif anchor and full.endswith('.md') and anchor not in set(anchors(read(os.path.relpath(full, REPO_ROOT)))):
                broken.append(f'{doc}: {target} (no such heading)')
    assert broken == []

def test_anchors_as_github_writes_them():
    # A second, hand-written statement of GitHub's rule for the headings this repository links to.
    assert list(anchors('# A\n```\n# not a heading\n```\n## Families and presets (`--cfg`, files in `configs/`)\n### Resume and safety\n## A\n')) == \
        ['a', 'families-and-presets---cfg-files-in-configs', 'resume-and-safety', 'a-1']

def test_nothing_refers_outside_the_repository():
    needles = ['../' + 'shared', 'shared/' + 'DESIGN']
    found = []
    for folder, dirs, files in os.walk(REPO_ROOT):
        dirs[:] = [d for d in dirs if not d.startswith('.') and d not in ('__pycache__', 'build')]
        for name in files:
            if name.endswith(('.md', '.py', '.yaml', '.toml', '.yml', '.sh')):
                path = os.path.relpath(os.path.join(folder, name), REPO_ROOT)
                found += [f'{path}: {needle}' for needle in needles if needle in read(path)]
    assert found == []

#----------------------------------------------------------------------------

def markdown_table(path: str, heading: str) -> list:
    """The first table after the heading in a Markdown file: a list of rows, each {column: cell}."""
    section = read(path).split(f'\n{heading}\n', 1)[1]
    lines = section[section.index('\n|'):].split('\n\n', 1)[0].strip().splitlines()
    rows = [[cell.strip() for cell in line.strip().strip('|').split('|')] for line in lines if not line.startswith('|---')]
    return [dict(zip(rows[0], row)) for row in rows[1:]]

def test_readme_families_table_names_every_preset():
    table = markdown_table('README.md', '## Families')
    listed = [name for row in table for name in re.findall(r'`([^`]+)`', row['--cfg'])]
    assert sorted(listed) == presets.preset_names() # every preset once, no other
    commands = ' '.join(row['training command'] for row in table)
    for row in table: # one command per row, training a preset of its row (an overlay's row: any preset)
        cfgs = re.findall(r'--cfg[= ]([\w-]+)', row['training command'])
        assert len(cfgs) == 1 and cfgs[0] in (re.findall(r'`([^`]+)`', row['--cfg']) or presets.preset_names()), row['family']
    for option in train.OVERLAY_OPTIONS.values():
        assert re.search(f'{option}( |`)', commands), option
    assert sorted(train.OVERLAY_OPTIONS) == sorted(os.path.splitext(name)[0] for name in os.listdir(presets.OVERLAY_DIR))

#----------------------------------------------------------------------------

MISSING = object() # a setting the preset's family does not have

def preset_cell(spec: dict, value) -> str:
    """How docs/training.md shows a raw preset value: numbers as %g, None as '-', an expression without its '=', and
    a reference to a knob ('=lrate') as the knob's own value."""
    if value is MISSING:
        return '-'
    if isinstance(value, str) and value.startswith('=') and value[1:] in presets.knob_names(spec):
        return preset_cell(spec, spec[value[1:]])
    if value is None:
        return '-'
    if isinstance(value, str):
        return value.lstrip('=')
    return f'{value:g}'

def test_preset_table_matches_configs():
    table = {row['--cfg']: row for row in markdown_table('docs/training.md', '## Presets')}
    assert sorted(table) == presets.preset_names() # every preset, no other
    for cfg, row in table.items():
        spec = presets.load_preset(cfg)
        expected = {'family': spec.family,
                    'G': spec.networks.G.class_name.split('.')[1], 'D': spec.networks.D.class_name.split('.')[1] if 'D' in spec.networks else '-', # DDPM: none
                    'ref GPUs': preset_cell(spec, spec.ref_gpus), 'kimg': preset_cell(spec, spec.kimg), 'batch': preset_cell(spec, spec.batch),
                    'mbstd': preset_cell(spec, spec.get('mbstd', MISSING)), 'G lr': preset_cell(spec, spec.optimizers.G.lr), 'D lr': preset_cell(spec, spec.optimizers.D.lr if 'D' in spec.optimizers else MISSING),
                    'R1 gamma': preset_cell(spec, spec.loss.get('r1_gamma', MISSING)), 'EMA kimg': preset_cell(spec, spec.ema), 'EMA ramp': preset_cell(spec, spec.ramp),
                    'mapping': preset_cell(spec, spec.networks.G.get('mapping_kwargs', {}).get('num_layers', MISSING)),
                    'lazy reg G/D': '/'.join(preset_cell(spec, spec.reg_intervals.get(name)) for name in ['G', 'D'])}
        for column, value in expected.items():
            assert row[column] == value, (cfg, column)

#----------------------------------------------------------------------------
