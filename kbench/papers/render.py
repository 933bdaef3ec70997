"""Paper-ready output of ``kbench reproduce``: each table laid out as printed, the paper's figure and
kbench's beside it at the same precision, every explanation and open difference as a footnote.

``format_like`` writes kbench's number the way the paper wrote its own ("569" under "Million
Mult-Adds" for 568,740,352; "$3.9 \\times 10^9$" beside "$3.8 \\times 10^9$"). ``markdown`` and
``latex`` render a whole report: the verdict summary, then one table per paper table (booktabs,
caption and label in LaTeX; the paper's LaTeX math kept as math), each followed by its notes.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

_PLAIN = re.compile(r"^(?P<lead>\$?\s*)(?P<sign>-?)(?P<digits>\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?|\.\d+)"
                    r"(?P<rest>\s*[KkMGBT]?\s*(?:%|MB|Kb|ms|×)?)(?P<footnote>\**)(?P<trail>\s*\$?)$")
_POWER = re.compile(r"(?P<mantissa>\d+(?:\.\d+)?)(?P<times>\s*(?:\\times|×|x|\*)\s*10\s*\^\s*\{?(?P<exp>\d+)\}?)")
_SHAPE_SEPARATOR = re.compile(r"\s*(?:\\times|×|x|\*)\s*")
MARKS = "abcdefghijklmnopqrstuvwxyz"
# Verdicts whose kbench figure gets a footnote (what was computed, or why not).
FOOTNOTED = ("tolerance", "explained", "unexplained", "unreadable", "not_measurable")


def format_like(value, number) -> str:
    """``number`` (in the value's unit) written like the printed ``value.text``: the same suffix,
    the same digits after the point, the same thousands separators; shapes with the same sign."""
    if number is None:
        return ""
    text = value.text.strip()
    if isinstance(number, tuple):
        if text.startswith("(") and "," in text:
            return "(" + ", ".join(map(str, number)) + ")"
        separator = " \\times " if "\\times" in text else (" × " if "×" in text else " x ")
        shown = separator.join(map(str, number))
        return f"${shown}$" if "$" in text and "\\times" in separator else shown
    if value.unit == "shape":
        return str(number)
    plain = _PLAIN.match(text)
    if plain and value.decimals is not None:
        digits = plain["digits"]
        scaled = number / value.scale
        decimals = value.decimals
        shown = f"{scaled:,.{decimals}f}" if "," in digits else f"{scaled:.{decimals}f}"
        return f"{plain['lead']}{shown}{plain['rest']}{plain['trail']}"
    power = _POWER.search(text)
    if power and value.decimals is not None:
        mantissa = number / 10 ** int(power["exp"])
        return text[:power.start("mantissa")] + f"{mantissa:.{value.decimals}f}" + text[power.end("mantissa"):]
    if isinstance(number, float) and not number.is_integer():
        return f"{number:,.2f}"
    return f"{int(number):,}"


# ---------------------------------------------------------------- one table as printed

def _header(table, quantity: str, at: str) -> str:
    named = table.columns.get(f"{quantity} [{at}]") if at else None
    named = named or table.columns.get(quantity) or quantity.replace("_", " ")
    return f"{named} [{at}]" if at and f"{quantity} [{at}]" not in table.columns else named


def _layout_keys(table, row, value) -> tuple[tuple, str, tuple, str]:
    """(line key, line label, column key, column label) of one printed value in the table's layout."""
    if table.layout == "at":
        place = value.at or _header(table, value.quantity, "")
        line = (place, value.quantity) if value.at else (place,)
        label = f"{value.at}: {_header(table, value.quantity, '')}" if value.at else place
        return line, label, (row.name, row.setting), row.name
    if table.layout == "lines":
        label = (value.at if len(table.rows) == 1 else f"{row.name}: {value.at}") if value.at else row.name
        return (row.name, row.setting, value.at), label, (value.quantity,), _header(table, value.quantity, "")
    return (row.name, row.setting), row.name, (value.quantity, value.at), _header(table, value.quantity, value.at)


class PaperLayout:
    """A table laid out as printed: lines x columns, each cell (paper text, kbench text, mark),
    and the footnotes the marks point to."""

    def __init__(self, table, entries: list[Mapping[str, Any]]):
        self.table = table
        self.lines: dict[tuple, str] = {}
        self.columns: dict[tuple, str] = {}
        self.cells: dict[tuple[tuple, tuple], tuple[str, str, str]] = {}
        self.measured_columns: set[tuple] = set()
        self.conventions: dict[tuple, list[str]] = {}
        self.footnotes: list[tuple[str, str]] = []
        models: dict[str, list[str]] = {}
        notes: dict[str, str] = {}   # footnote text -> its mark
        places: dict[str, list[str]] = {}
        order: list[tuple] = []      # line keys, merged from every row's reading order
        previous: dict[int, tuple] = {}
        for (row, value), entry in zip(table.printed_values(), entries):
            line, line_label, column, column_label = _layout_keys(table, row, value)
            if line not in self.lines:  # a new line goes right after the line this row printed before it
                after = previous.get(id(row))
                order.insert(order.index(after) + 1 if after in order else len(order), line)
            previous[id(row)] = line
            self.lines.setdefault(line, line_label)
            self.columns.setdefault(column, column_label)
            mark = ""
            if entry["verdict"] in FOOTNOTED:
                body = _footnote(entry)
                if body in notes:  # the same words for several cells: one footnote, its cells listed
                    mark = notes[body]
                    places[mark].append(f"{line_label}, {column_label}")
                else:
                    mark = MARKS[len(notes) % len(MARKS)] * (1 + len(notes) // len(MARKS))
                    notes[body] = mark
                    places[mark] = [f"{line_label}, {column_label}"]
            if entry.get("measured_text"):
                self.measured_columns.add(column)
                convention = entry["convention"]
                if convention not in self.conventions.setdefault(column, []):
                    self.conventions[column].append(convention)
            self.cells[(line, column)] = (value.text, entry.get("measured_text") or "", mark)
            if entry.get("model"):
                key = f"{entry['model']} at {entry['input_size']}" if entry.get("input_size") else entry["model"]
                names = models.setdefault(key, [])
                if row.name not in names:
                    names.append(row.name)
        self.models = models
        self.footnotes = [(mark, f"{'; '.join(places[mark])}: {body}") for body, mark in notes.items()]
        self.lines = {line: self.lines[line] for line in order}
        if table.layout == "rows":  # columns grouped by quantity, in the order the table's headers give
            named = [key.split(" [")[0] for key in table.columns]
            first = {column: i for i, column in enumerate(self.columns)}
            rank = {column: (named.index(column[0]) if column[0] in named else len(named), first[column])
                    for column in self.columns}
            self.columns = {column: self.columns[column] for column in sorted(self.columns, key=rank.get)}
        # architecture tables (models as columns) show one cell per model: the paper's figure, and
        # kbench's beside it only where it differs at the printed precision
        self.compact = table.layout == "at"

    def cell(self, line, column) -> tuple[str, str, str]:
        """(paper text, kbench text, footnote mark) of one cell; blanks where the table prints nothing."""
        return self.cells.get((line, column), ("", "", ""))

    def compact_cell(self, line, column) -> tuple[str, str, str]:
        """(paper text, kbench text where it differs from the paper's, mark) of one cell."""
        paper, kbench, mark = self.cell(line, column)
        return paper, ("" if _same_text(paper, kbench) else kbench), mark

    def kbench_header(self, column) -> str:
        conventions = [c for c in self.conventions.get(column, []) if c not in ("shape", "paper", "unknown")]
        return f"kbench ({conventions[0]})" if len(conventions) == 1 else "kbench"

    @property
    def label_header(self) -> str:
        return self.table.columns.get("label", "")


def _same_text(paper: str, kbench: str) -> bool:
    """Whether kbench's figure reads as the paper's ("3×3" and "$3 \\times 3$" do)."""
    def plain(text):
        text = re.sub(r"</?b>|<sup>.*?</sup>|\\text\{[^}]*\}|\$", "", text).replace("\\times", "×")
        text = re.sub(r"(?<=\d)\s*[x×]\s*(?=\d)", "×", text)
        return re.sub(r"[\s*]|conv\b|dw\b|Pool", "", text)

    return not kbench or plain(paper) == plain(kbench)


def _footnote(entry: Mapping[str, Any]) -> str:
    """What a footnote says of one cell: its verdict and the check or note behind it."""
    verdict = entry["verdict"]
    check = re.sub(r" \[(?:reproduces|does not reproduce) the printed figure[^\]]*\]$", "", entry.get("check") or "")
    if verdict == "explained":
        how = re.search(r"\[(reproduces the printed figure[^\]]*)\]$", entry.get("check") or "")
        return f"explained: {check}" + (f" ({how[1]})" if how and "median ratio" not in how[1] else
                                        " (within 0.2% of the group's common ratio)" if how else "")
    if verdict == "tolerance":
        return "within the stated tolerance" + (f": {entry['note']}" if entry.get("note") else "")
    if verdict == "unexplained":
        text = f"unexplained: {entry.get('note') or 'kbench measures ' + str(entry['measured'])}"
        return text + (f" (check tried: {check})" if check else "")
    return f"{verdict}: {entry.get('note', '')}"


# ---------------------------------------------------------------- markdown

def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(layout: PaperLayout) -> str:
    header = [layout.label_header or ""]
    for column, label in layout.columns.items():
        if layout.compact:
            header.append(label)
            continue
        header.append(f"{label} (paper)")
        if column in layout.measured_columns:
            header.append(layout.kbench_header(column))
    lines = ["| " + " | ".join(_md(h) for h in header) + " |",
             "|" + "|".join([":--"] + ["--:"] * (len(header) - 1)) + "|"]
    for line, label in layout.lines.items():
        cells = [_md(label)]
        for column in layout.columns:
            if layout.compact:
                paper, kbench, mark = layout.compact_cell(line, column)
                cells.append(_md(paper + (f" (kbench {kbench})" if kbench else "") + (f" ^{mark}" if mark else "")))
                continue
            paper, kbench, mark = layout.cell(line, column)
            cells.append(_md(paper))
            if column in layout.measured_columns:
                cells.append(_md(kbench + (f" ^{mark}" if mark else "")) if kbench or mark else "")
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {mark}: {_md(text)}" for mark, text in layout.footnotes]
    if layout.compact:
        lines.insert(0, "Each cell: the paper's figure, and kbench's in parentheses where it differs.\n")
    return "\n".join(lines) + ("\n\n" + "\n".join(notes) if notes else "") + "\n"


def _counts_line(entries) -> str:
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry["verdict"]] = counts.get(entry["verdict"], 0) + 1
    return ", ".join(f"{verdict} {n}" for verdict, n in counts.items())


def _models_line(layout: PaperLayout) -> str:
    return "; ".join(f"{model} ({', '.join(rows)})" for model, rows in layout.models.items())


def markdown(tables, report: list[Mapping[str, Any]], counts: Mapping[str, int], *, formulas=(), speed=False,
             speed_columns=()) -> str:
    import pandas as pd

    from kbench.papers.loader import COMPARED

    compared = sum(counts[v] for v in COMPARED)
    parts = [f"## Verdicts\n\n{compared} of {len(report)} printed numbers compared with a measurement.\n\n"
             + pd.DataFrame([counts]).to_markdown(index=False) + "\n"]
    for table, entries in _per_table(tables, report):
        layout = PaperLayout(table, entries)
        parts.append(f"## {table.id}: {table.title}\n\n{table.source}.  \n"
                     f"Measured on: {_models_line(layout) or 'nothing (no kbench model)'}.  \n"
                     f"{table.coverage}; {_counts_line(entries)}.\n\n" + markdown_table(layout))
        if speed:
            rows = [e for e in entries if e.get("speed_model")]
            if rows:
                frame = pd.DataFrame(rows, columns=["row", "quantity", "reported_text", *speed_columns])
                parts.append(f"### {table.id}: speed ratios measured here\n\n"
                             + frame.astype(object).fillna("").to_markdown(index=False, disable_numparse=True) + "\n")
    if formulas:
        parts.append("## Printed formulas on real Keras layers\n\n"
                     + pd.DataFrame(formulas).astype(object).fillna("").to_markdown(index=False, disable_numparse=True) + "\n")
    return "\n".join(parts)


def _per_table(tables, report):
    offset = 0
    for table in tables:
        n = len(table.printed_values())
        yield table, report[offset:offset + n]
        offset += n


# ---------------------------------------------------------------- LaTeX

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_", "{": r"\{",
                  "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "$": r"\$"}
_LATEX_UNICODE = {"×": r"$\times$", "·": r"$\cdot$", "≈": r"$\approx$", "−": "--", "–": "--", "—": "---",
                  "γ": r"$\gamma$", "β": r"$\beta$", "σ": r"$\sigma$", "²": r"$^2$", "∠": r"$\angle$",
                  "→": r"$\rightarrow$", "≤": r"$\leq$", "≥": r"$\geq$", "±": r"$\pm$", "…": r"\dots{}",
                  "’": "'", "“": "``", "”": "''", "\u2009": " ", "\xa0": "~"}


def latex_text(text: str) -> str:
    """Printed text for LaTeX: its ``$...$`` math kept as math, everything else escaped; HTML
    superscripts (``<sup>*</sup>``) as superscripts; common Unicode math signs as math."""
    text = str(text)
    if "$" not in text and re.search(r"\\(?:times|cdot|frac|sqrt)\b", text):  # printed math without delimiters
        text = f"${text}$"
    text = re.sub(r"<sup>(.*?)</sup>", lambda m: f"$^{{{m[1]}}}$", text)
    text = re.sub(r"</?b>", "", text)
    out = []
    for i, part in enumerate(re.split(r"(\$\$?[^$]+\$\$?)", text)):
        if i % 2:  # math as printed ($$...$$ becomes inline math inside a cell)
            out.append("$" + part.strip("$") + "$")
            continue
        escaped = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in part)
        out.append("".join(_LATEX_UNICODE.get(ch, ch) for ch in escaped))
    return "".join(out)


def _latex_mark(mark: str) -> str:
    return f"\\textsuperscript{{{mark}}}" if mark else ""


def _stacked(label: str) -> str:
    """A long column header on two lines, broken before its parenthesis or bracket."""
    split = re.search(r" (?=[(\[])", label)
    if len(label) <= 14 or not split:
        return latex_text(label)
    first, rest = label[:split.start()], label[split.end():]
    return f"\\begin{{tabular}}[b]{{@{{}}c@{{}}}}{latex_text(first)}\\\\{latex_text(rest)}\\end{{tabular}}"


def latex_table(layout: PaperLayout) -> str:
    table = layout.table
    groups = []
    for column, label in layout.columns.items():
        groups.append((label, column in layout.measured_columns and not layout.compact, column))
    # a column whose printed text is long (a formula) wraps in a paragraph column, as does a long label
    longest = {column: max([len(layout.cell(line, column)[0]) for line in layout.lines] or [0]) for _, _, column in groups}
    paper_spec = {column: (r"p{5.5cm}" if n > 60 else "r") for column, n in longest.items()}
    label_spec = r"p{4.2cm}" if max([len(label) for label in layout.lines.values()] or [0]) > 45 else "l"
    spec = label_spec + "".join(paper_spec[column] + ("r" if measured else "") for _, measured, column in groups)
    top = [latex_text(layout.label_header)]
    sub = [""]
    rules = []
    index = 2
    for label, measured, column in groups:
        width = 2 if measured else 1
        top.append(f"\\multicolumn{{{width}}}{{c}}{{{_stacked(label)}}}" if width > 1 else _stacked(label))
        sub += ["paper", latex_text(layout.kbench_header(column))] if measured else (
            ["paper (kbench)"] if layout.compact and column in layout.measured_columns else ["paper"])
        rules.append(f"\\cmidrule(lr){{{index}-{index + width - 1}}}")
        index += width
    body = []
    for line, label in layout.lines.items():
        cells = [latex_text(label)]
        for _, measured, column in groups:
            if layout.compact:
                paper, kbench, mark = layout.compact_cell(line, column)
                cells.append(latex_text(paper) + (f" ({latex_text(kbench)})" if kbench else "") + _latex_mark(mark))
                continue
            paper, kbench, mark = layout.cell(line, column)
            cells.append(latex_text(paper))
            if measured:
                cells.append(latex_text(kbench) + _latex_mark(mark))
            elif mark:
                cells[-1] += _latex_mark(mark)
        body.append(" & ".join(cells) + r" \\")
    long = len(body) > 40
    # a wide table gets a smaller font and narrower column gaps (in characters of its widest line)
    widths = [max([len(re.sub(r"\\[a-z]+|[{}$^]", "", cell)) for cell in column] or [0])
              for column in zip(*[line.split(" & ") for line in body])]
    widths = [min(w, 30) for w in widths]  # paragraph columns wrap
    width = max(sum(widths) + 2 * len(widths),
                len(layout.label_header) + sum(min(len(label), 14) + 2 for label, _, _ in groups))
    size = r"\small" if width <= 80 else (r"\footnotesize\setlength{\tabcolsep}{4pt}" if width <= 105
                                         else r"\scriptsize\setlength{\tabcolsep}{3pt}")
    caption = (f"{latex_text(table.title)}: the printed figures ({latex_text(table.citation.first_author)} "
               f"{table.citation.year}, {latex_text(table.citation.table)}) beside kbench's measurement")
    label = f"tab:kbench-{table.id.replace('_', '-')}"
    head = [r"\toprule", " & ".join(top) + r" \\", " ".join(rules), " & ".join(sub) + r" \\", r"\midrule"]
    if layout.compact:  # one cell per column: the paper's figure, kbench's in parentheses where it differs
        head = [r"\toprule", " & ".join(top) + r" \\", r"\midrule"]
    notes = [f"\\textsuperscript{{{mark}}}\\,{latex_text(text)}" for mark, text in layout.footnotes]
    source = (f"Source: {latex_text(table.source)}. Measured on: {latex_text(_models_line(layout) or 'nothing')}. "
              f"{latex_text(table.coverage)}."
              + (" Each cell: the paper's figure, kbench's in parentheses where it differs." if layout.compact else ""))
    needs = "booktabs" + (",longtable" if long else "")
    cjk = any(re.search(r"[\u3000-\u9fff]", text) for text in [table.title, *layout.lines.values(), *layout.columns.values()])
    preamble = f"% needs \\usepackage{{{needs}}}" + (" and a CJK setup for its Chinese text (xelatex with xeCJK)" if cjk else "")
    if long:
        lines = ["{" + size, f"\\begin{{longtable}}{{{spec}}}", f"\\caption{{{caption}}}\\label{{{label}}}\\\\", *head,
                 r"\endfirsthead", *head, r"\endhead", *body, r"\bottomrule", r"\end{longtable}", "}",
                 r"{\footnotesize\noindent " + source + (r"\\" + r"\\ ".join(notes) if notes else "") + "\\par}"]
        return preamble + "\n" + "\n".join(lines) + "\n"
    lines = [r"\begin{table}[htbp]", r"\centering", size, f"\\caption{{{caption}}}", f"\\label{{{label}}}",
             f"\\begin{{tabular}}{{{spec}}}", *head, *body, r"\bottomrule", r"\end{tabular}",
             r"\par\smallskip\parbox{\linewidth}{\footnotesize\raggedright " + source
             + ("\\\\ " + "\\\\ ".join(notes) if notes else "") + "}", r"\end{table}"]
    return preamble + "\n" + "\n".join(lines) + "\n"


def latex(tables, report: list[Mapping[str, Any]], counts: Mapping[str, int], *, formulas=()) -> str:
    from kbench.papers.loader import COMPARED

    compared = sum(counts[v] for v in COMPARED)
    verdicts = [v for v in counts if counts[v]]
    summary = [r"\begin{table}[htbp]", r"\centering", r"\small",
               f"\\caption{{kbench reproduce: {compared} of {len(report)} printed numbers compared with a measurement}}",
               r"\label{tab:kbench-verdicts}", f"\\begin{{tabular}}{{{'r' * len(verdicts)}}}", r"\toprule",
               " & ".join(latex_text(v) for v in verdicts) + r" \\", r"\midrule",
               " & ".join(str(counts[v]) for v in verdicts) + r" \\", r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    parts = ["% kbench reproduce: the papers' tables beside kbench's measurements\n"
             "% needs \\usepackage{booktabs} (and longtable for tables of more than 40 lines)\n" + "\n".join(summary) + "\n"]
    for table, entries in _per_table(tables, report):
        parts.append(latex_table(PaperLayout(table, entries)))
    if formulas:
        rows = [" & ".join([latex_text(f["formula"]), latex_text(f["text"]), latex_text(str(f["formula_value"])),
                            latex_text("" if f["measured"] is None else str(f["measured"])), latex_text(f["verdict"])])
                + r" \\" for f in formulas]
        parts.append("\n".join([r"\begin{table}[htbp]", r"\centering", r"\small",
                                r"\caption{Printed formulas checked on real Keras layers}", r"\label{tab:kbench-formulas}",
                                r"\begin{tabular}{lp{6cm}rrl}", r"\toprule",
                                r"formula & as printed & formula value & measured & verdict \\", r"\midrule", *rows,
                                r"\bottomrule", r"\end{tabular}", r"\end{table}"]) + "\n")
    return "\n".join(parts)

