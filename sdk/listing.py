"""``workeros plugins listing``: a static plugin directory (JSON and HTML, one
page per plugin) built from package metadata plus a curated index file.

Every installed distribution with a ``workeros`` entry point is listed, and so is
every distribution the index names, read from the index's wheel when it is not
installed. What each plugin implements and declares is read by importing it
(:func:`workeros.sdk.plugincheck.describe`), never typed in by hand; the index
adds only what metadata cannot say (category, tags, notes, extra links) or
hides an entry. ``docs/marketplace.md`` documents the index format."""

from __future__ import annotations

import html
import importlib.metadata as md
import json
import re
import tomllib
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

from workeros.sdk.plugincheck import (
    GROUP,
    PluginMeta,
    check_meta,
    describe,
    findings_json,
    from_distribution,
    load_meta,
)

CURATED = ("category", "tags", "notes", "links", "featured")


class ListingIndexError(ValueError):
    """The index file is unreadable or names what cannot be found."""


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_index(path: Path) -> list[dict[str, Any]]:
    """The index's ``[[plugin]]`` entries (TOML, or JSON ``{"plugin": [...]}``)."""
    try:
        text = path.read_text(encoding="utf-8")
        doc = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as exc:
        raise ListingIndexError(f"{path}: {exc}") from None
    entries = doc.get("plugin", [])
    if not isinstance(entries, list):
        raise ListingIndexError(f"{path}: 'plugin' must be a list of tables")
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("distribution"), str):
            raise ListingIndexError(f"{path}: plugin #{number} needs a 'distribution' name")
        unknown = set(entry) - {"distribution", "wheel", "hidden", *CURATED}
        if unknown:
            raise ListingIndexError(f"{path}: plugin {entry['distribution']!r} has unknown keys {sorted(unknown)}")
        if "tags" in entry and not (isinstance(entry["tags"], list) and all(isinstance(t, str) for t in entry["tags"])):
            raise ListingIndexError(f"{path}: plugin {entry['distribution']!r}: tags must be a list of strings")
        if "links" in entry and not isinstance(entry["links"], dict):
            raise ListingIndexError(f"{path}: plugin {entry['distribution']!r}: links must be a table of label = URL")
    return entries


def installed_plugins() -> dict[str, md.Distribution]:
    """Installed distributions with a ``workeros`` entry point, by normalised name."""
    found: dict[str, md.Distribution] = {}
    for dist in md.distributions():
        if any(ep.group == GROUP for ep in dist.entry_points):
            found.setdefault(_key(dist.metadata["Name"]), dist)
    return found


def _root_extras() -> dict[str, list[str]]:
    """Which ``workeros[extra]`` installs each distribution."""
    out: dict[str, list[str]] = {}
    try:
        requires = md.distribution("workeros").requires or []
    except md.PackageNotFoundError:
        return out
    for line in requires:
        req = Requirement(line)
        match = re.search(r'extra\s*==\s*"([^"]+)"', str(req.marker or ""))
        if match:
            out.setdefault(_key(req.name), []).append(match.group(1))
    return {k: sorted(set(v)) for k, v in out.items()}


def build(index: Path | None = None) -> dict[str, Any]:
    """The listing as one JSON-ready document."""
    from workeros import __version__

    curated = {_key(e["distribution"]): e for e in read_index(index)} if index else {}
    metas: dict[str, PluginMeta] = {}
    for key, dist in installed_plugins().items():
        metas[key] = from_distribution(dist)
    for key, entry in curated.items():
        if "wheel" in entry:
            wheel = (index.parent / entry["wheel"]) if index else Path(entry["wheel"])
            try:
                metas[key] = load_meta(str(wheel))
            except LookupError as exc:
                raise ListingIndexError(f"plugin {entry['distribution']!r}: {exc}") from None
        elif key not in metas:
            raise ListingIndexError(f"plugin {entry['distribution']!r} is neither installed nor given a 'wheel'")
    extras_of = _root_extras()
    plugins = []
    for key in sorted(metas):
        entry = curated.get(key, {})
        if entry.get("hidden"):
            continue
        meta = metas[key]
        described = describe(meta)
        findings = check_meta(meta, described)
        req = meta.workeros_requirement
        links = {**meta.urls, **entry.get("links", {})}
        plugins.append({
            "distribution": meta.name, "slug": key, "version": meta.version, "summary": meta.summary,
            "license": meta.license, "keywords": meta.keywords, "classifiers": meta.classifiers,
            "entry_points": [name for name, _ in meta.entry_points],
            "hooks": described.hooks, "backends": described.backends, "settings": described.settings,
            "commands": sorted(described.commands),
            "workeros": str(req.specifier) if req is not None else None,
            "compatible_with_this_workeros": bool(req and req.specifier.contains(__version__, prereleases=True)),
            "extras": meta.extras, "installed_by": [f"workeros[{x}]" for x in extras_of.get(key, [])],
            "links": links, "install": f"pip install {meta.name}",
            **{k: entry[k] for k in ("category", "tags", "notes", "featured") if k in entry},
            "listable": not any(f.level == "error" for f in findings),
            "findings": findings_json(findings),
        })
    return {"workeros": __version__, "count": len(plugins), "plugins": plugins}


def write(listing: dict[str, Any], out: Path) -> list[Path]:
    """``index.json``, ``index.html`` and ``plugins/<slug>.{json,html}``."""
    (out / "plugins").mkdir(parents=True, exist_ok=True)
    written = [out / "index.json", out / "index.html"]
    written[0].write_text(json.dumps(listing, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    written[1].write_text(_index_html(listing), encoding="utf-8")
    for plugin in listing["plugins"]:
        page = out / "plugins" / f"{plugin['slug']}.json"
        page.write_text(json.dumps(plugin, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        html_page = page.with_suffix(".html")
        html_page.write_text(_plugin_html(plugin, listing["workeros"]), encoding="utf-8")
        written += [page, html_page]
    return written


# -- HTML ---------------------------------------------------------------------------
e = html.escape
STYLE = ("body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
         "table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem;"
         "text-align:left;vertical-align:top}code{background:#f4f4f4;padding:0 .2rem}.warn{color:#a60}"
         ".err{color:#b00}")


def _page(title: str, body: str) -> str:
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f"<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")


def _link(url: str, label: str) -> str:
    safe = url if re.match(r"^(https?://|\./|\.\./|[\w.-]+\.html$)", url) else "#"
    return f'<a href="{e(safe)}">{e(label)}</a>'


def _index_html(listing: dict[str, Any]) -> str:
    rows = "\n".join(
        f"<tr><td>{_link('plugins/' + p['slug'] + '.html', p['distribution'])}</td><td>{e(p['version'])}</td>"
        f"<td>{e(p['summary'])}</td><td>{e(p.get('category', ''))}</td><td>{e(p['workeros'] or '-')}</td></tr>"
        for p in listing["plugins"])
    return _page("workeros plugins", f"<h1>workeros plugins</h1><p>{listing['count']} plugins, built for workeros "
                 f"{e(listing['workeros'])}.</p>\n<table><tr><th>Distribution</th><th>Version</th><th>Summary</th>"
                 f"<th>Category</th><th>workeros</th></tr>\n{rows}\n</table>")


def _plugin_html(p: dict[str, Any], version: str) -> str:
    def items(values: list[str]) -> str:
        return "<ul>" + "".join(f"<li><code>{e(v)}</code></li>" for v in values) + "</ul>" if values else "<p>none</p>"

    backends = "".join(f"<tr><td>{e(b['area'])}</td><td><code>{e(b['name'])}</code></td><td>{e(b['description'])}"
                       "</td></tr>" for b in p["backends"])
    settings = "".join(
        f"<tr><td><code>{e(s['name'])}</code></td><td>{e(s['type'])}</td>"
        f"<td>{'(secret)' if s['secret'] else e(json.dumps(s['default']))}</td><td>{e(s['description'])}</td></tr>"
        for s in p["settings"])
    findings = "".join(f"<li class=\"{'err' if f['level'] == 'error' else 'warn'}\">{e(f['level'])} "
                       f"<code>{e(f['code'])}</code>: {e(f['message'])}</li>" for f in p["findings"])
    links = " · ".join(_link(url, label) for label, url in p["links"].items()) or "none"
    compatible = "yes" if p["compatible_with_this_workeros"] else "no"
    body = f"""<p>{_link('../index.html', 'All plugins')}</p>
<h1>{e(p['distribution'])} <small>{e(p['version'])}</small></h1>
<p>{e(p['summary'])}</p>
<p><code>{e(p['install'])}</code>{''.join(f' or <code>pip install {e(x)}</code>' for x in p['installed_by'])}</p>
<table>
<tr><th>Licence</th><td>{e(p['license'] or 'not declared')}</td></tr>
<tr><th>workeros versions</th><td><code>{e(p['workeros'] or 'not declared')}</code>
 (works with {e(version)}: {compatible})</td></tr>
<tr><th>Entry points</th><td>{e(', '.join(p['entry_points']))}</td></tr>
<tr><th>Extras</th><td>{e(', '.join(p['extras']) or 'none')}</td></tr>
<tr><th>Category</th><td>{e(p.get('category', ''))} {e(' '.join(p.get('tags', [])))}</td></tr>
<tr><th>Links</th><td>{links}</td></tr>
</table>
{f"<p>{e(p['notes'])}</p>" if p.get('notes') else ''}
<h2>Hooks implemented</h2>{items(p['hooks'])}
<h2>Backends</h2>{f'<table><tr><th>Area</th><th>Name</th><th>Description</th></tr>{backends}</table>'
                  if backends else '<p>none</p>'}
<h2>Settings</h2>{f'<table><tr><th>Name</th><th>Type</th><th>Default</th><th>Description</th></tr>{settings}</table>'
                  if settings else '<p>none</p>'}
<h2>Commands</h2>{items(p['commands'])}
<h2>Check</h2>{f'<ul>{findings}</ul>' if findings else '<p>No findings.</p>'}"""
    return _page(f"{p['distribution']} — workeros plugins", body)
