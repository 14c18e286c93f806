#!/usr/bin/python3
"""Checks that a fresh Debian machine has everything this build and its tests used.

What a build includes and what the tests and scripts run must come from a Debian package that
scripts/install-deps.sh installs, from one that those depend on (Depends, Pre-Depends,
recursively), or from one every Debian system has (Essential: yes, Priority: required). A
package that merely happens to be installed on the developer's machine is the bug this catches:
CI would pass there and a fresh machine would fail.

Checked:
  - every header outside the source and build trees that ninja's dependency log records for
    the given build directories (`ninja -t deps`);
  - every program the tests ran: the commands of the CTest tests (`ctest --show-only=json-v1`)
    and the programs test helpers started (one path a line in the --exec-log file, written by
    tests/testing.cc and python/tests/conftest.py when $PACKICE_EXEC_LOG is set);
  - every program the scripts (scripts/, bench/, .ci/) start, found at the command positions of
    their lines.

Usage: scripts/check-deps.py --build DIR [--build DIR ...] [--exec-log FILE]
Exits 1 naming each header or program and the package it came from; 0 when all is covered.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(argv, check=True):
    out = subprocess.run(argv, capture_output=True, text=True)
    if check and out.returncode != 0:
        sys.exit(f"check-deps: {' '.join(argv)} failed: {out.stderr.strip()}")
    return out.stdout


def declared_packages(bench):
    """What install-deps.sh installs (with its --bench extras: what bench/ scripts need)."""
    argv = [os.path.join(ROOT, "scripts/install-deps.sh"), "--print"] + (["--bench"] if bench else [])
    names = run(argv).split()
    if not names:
        sys.exit("check-deps: install-deps.sh --print listed no packages")
    return set(names)


class Installed:
    """The installed packages, what they provide and depend on."""

    def __init__(self):
        fmt = "${Package}\t${Status}\t${Essential}\t${Priority}\t${Provides}\t${Depends}\t${Pre-Depends}\n"
        self.depends = {}
        self.providers = {}
        self.base = set()
        for line in run(["dpkg-query", "-W", "-f=" + fmt]).splitlines():
            fields = line.split("\t")
            if len(fields) != 7 or "install ok installed" not in fields[1]:
                continue
            name, _, essential, priority, provides, depends, predepends = fields
            self.depends[name] = [alt for alt in (depends + "," + predepends).split(",") if alt.strip()]
            if essential == "yes" or priority == "required":
                self.base.add(name)
            for p in provides.split(","):
                if p.strip():
                    self.providers.setdefault(bare(p), []).append(name)

    def resolve(self, alternatives):
        """The installed package a dependency like 'a (>= 1) | b' is satisfied by, if any."""
        for alt in alternatives.split("|"):
            name = bare(alt)
            if name in self.depends:
                return name
            for provider in self.providers.get(name, []):
                return provider
        return None

    def closure(self, roots):
        seen = set()
        todo = [r for r in roots if r in self.depends]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            for dep in self.depends.get(name, []):
                got = self.resolve(dep)
                if got and got not in seen:
                    todo.append(got)
        return seen


def bare(dep):
    """'libfoo:amd64 (>= 1.2)' -> 'libfoo'."""
    return dep.strip().split(" ")[0].split(":")[0]


def owners(paths):
    """Maps each path to the packages dpkg says own it ([] for none)."""
    found = {p: [] for p in paths}
    pending = {}
    for p in paths:
        for candidate in {p, os.path.realpath(p), usrmerge_twin(p), usrmerge_twin(os.path.realpath(p))}:
            if candidate:
                pending.setdefault(candidate, set()).add(p)
    names = sorted(pending)
    for i in range(0, len(names), 500):
        out = run(["dpkg-query", "-S"] + names[i:i + 500], check=False)
        for line in out.splitlines():
            if line.startswith("diversion ") or ": " not in line:
                continue
            pkgs, path = line.split(": ", 1)
            for original in pending.get(path, ()):
                found[original] += [bare(x) for x in pkgs.split(",")]
    return found


def usrmerge_twin(path):
    """/usr/lib/x <-> /lib/x: a merged /usr registers files under either name."""
    for short in ("/lib", "/bin", "/sbin"):
        if path.startswith("/usr" + short + "/"):
            return path[len("/usr"):]
        if path.startswith(short + "/"):
            return "/usr" + path
    return None


def headers_of(build):
    build = os.path.abspath(build)
    out = run(["ninja", "-C", build, "-t", "deps"])
    trees = (ROOT + os.sep, build + os.sep)
    headers = set()
    for line in out.splitlines():
        if not line.startswith("    "):
            continue
        path = os.path.normpath(os.path.join(build, line.strip()))
        if not path.startswith(trees):
            headers.add(path)
    return headers


def ctest_commands(build):
    text = run(["ctest", "--test-dir", build, "--show-only=json-v1"], check=False)
    try:
        tests = json.loads(text).get("tests", [])
    except json.JSONDecodeError:
        return set()
    return {t["command"][0] for t in tests if t.get("command")}


SCRIPT_DIRS = ("scripts", "bench", ".ci")
# Words that start a command in a line of shell.
COMMAND_AFTER = {"|", "||", "&&", ";", "(", "$(", "`", "then", "do", "else", "elif", "!", "exec",
                 "time", "sudo", "$sudo", "xargs", "nohup", "env", "command", "-v"}


def script_programs():
    """{program: script} for the programs the project's shell scripts start."""
    progs = {}
    for d in SCRIPT_DIRS:
        base = os.path.join(ROOT, d)
        if not os.path.isdir(base):
            continue
        for name in sorted(os.listdir(base)):
            path = os.path.join(base, name)
            if not os.path.isfile(path):
                continue
            with open(path, errors="replace") as f:
                text = f.read()
            if not (name.endswith(".sh") or text.startswith("#!/usr/bin/env bash") or
                    text.startswith("#!/bin/bash")):
                continue
            for word in command_words(text):
                progs.setdefault(word, os.path.relpath(path, ROOT))
    return progs


def command_words(text):
    heredoc = None  # the word that ends the here-document being skipped (its body is not shell)
    for raw in text.splitlines():
        line = raw.strip()
        if heredoc is not None:
            if line == heredoc:
                heredoc = None
            continue
        if not line or line.startswith("#"):
            continue
        m = re.search(r"<<-?\s*['\"]?([A-Za-z_][A-Za-z0-9_]*)['\"]?", line)
        if m:
            heredoc = m.group(1)
        line = re.sub(r"(\$\(|\(|\)|\||&&|;|`)", r" \1 ", line)
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            words = line.split()
        at_start = True
        for w in words:
            if at_start and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", w):
                continue  # VAR=value before a command
            if at_start and re.fullmatch(r"[A-Za-z0-9_./+-]+", w) and not w.startswith("-"):
                yield w
            at_start = w in COMMAND_AFTER


def program_path(word):
    if word.startswith("/"):
        return word if os.path.exists(word) else None
    if "/" in word:
        return None  # relative: the project's own (scripts/build.sh, $build/packiced)
    return shutil.which(word, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", action="append", default=[], help="a ninja build directory")
    ap.add_argument("--exec-log", help="programs the tests started, one path a line")
    args = ap.parse_args()

    installed = Installed()
    declared = declared_packages(bench=False)
    declared_bench = declared_packages(bench=True)
    missing_decl = sorted(p for p in declared_bench if p not in installed.depends)
    if missing_decl:
        sys.exit("check-deps: install-deps.sh lists packages that are not installed: " +
                 " ".join(missing_decl))
    base = installed.closure(installed.base)
    allowed = installed.closure(declared) | base
    allowed_bench = installed.closure(declared_bench) | base

    # what -> (kind, where it was used)
    uses = {}
    for build in args.build:
        for h in headers_of(build):
            uses.setdefault(h, ("header", os.path.relpath(build, ROOT)))
        for c in ctest_commands(build):
            if c.startswith("/") and not c.startswith(ROOT + os.sep):
                uses.setdefault(c, ("program", "ctest in " + os.path.relpath(build, ROOT)))
    if args.exec_log and os.path.exists(args.exec_log):
        with open(args.exec_log) as f:
            for line in f:
                p = line.strip()
                if p.startswith("/") and not p.startswith(ROOT + os.sep) and os.path.exists(p):
                    uses.setdefault(p, ("program", "a test"))
    for word, script in script_programs().items():
        if is_shell_word(word):
            continue
        path = program_path(word)
        # A word that is no program here is a shell function, a heredoc's text or a program
        # this machine lacks too (then the script fails here as well, which shows it).
        if path:
            uses.setdefault(path, ("program", script))

    found = owners(sorted(uses))
    problems = []
    for what in sorted(uses):
        kind, where = uses[what]
        pkgs = found.get(what, [])
        if not pkgs:
            problems.append(f"{kind} {what} (used by {where}) belongs to no Debian package")
        elif not any(p in (allowed_bench if where.startswith("bench/") else allowed) for p in pkgs):
            flag = " --bench" if where.startswith("bench/") else ""
            problems.append(f"{kind} {what} (used by {where}) comes from package "
                            f"{', '.join(sorted(set(pkgs)))}, which scripts/install-deps.sh{flag} "
                            "does not install (add it there)")
    headers = sum(1 for k, _ in uses.values() if k == "header")
    programs = len(uses) - headers
    if problems:
        print("check-deps: a fresh machine would lack what this build uses:", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        return 1
    print(f"check-deps: {headers} headers and {programs} programs, all from packages "
          "install-deps.sh installs (or their dependencies, or Debian's base)")
    return 0


SHELL_WORDS = {"cd", "echo", "exit", "export", "set", "shift", "source", "read", "local", "return",
               "trap", "wait", "printf", "true", "false", "test", "for", "while", "if", "case",
               "esac", "fi", "done", "in", "until", "function", "declare", "unset", "eval",
               "break", "continue", "shopt", "ulimit", "umask", "type", "hash", "builtin",
               "let", "readonly", "getopts", "pushd", "popd", "mapfile", "disown", "jobs", "fg",
               "bg", "alias", "select", "coproc", "{", "}"}


def is_shell_word(word):
    return word in SHELL_WORDS or word.startswith("$")


if __name__ == "__main__":
    sys.exit(main())
