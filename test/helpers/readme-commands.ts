/**
 * The shell commands a Markdown file shows, in order, as a reader would type them: every
 * ```sh / ```bash / ```shell / ```console block (in a console block only `$ ` lines are commands;
 * the rest is output). A line ending in `\` continues on the next; a here-document runs to its
 * terminator; blank lines and whole-line `#` comments are not commands. A command's trailing
 * comment may say what it should exit with (`# exits 3`); a command ending in a lone `&` runs in
 * the background.
 */

export interface ShownCommand {
  /** 1-based line of the README where the command starts. */
  readonly line: number;
  /** The command as written (continuations and here-documents included, comment kept). */
  readonly text: string;
  /** The command without its trailing comment (what the skip list matches). */
  readonly bare: string;
  /** It ends in a lone `&`: started in the background. */
  readonly background: boolean;
  /** The exit status the README says it has (`# exits N`); 0 unless said. */
  readonly exitCode: number;
}

const SHELL_LANGUAGES = new Set(["sh", "bash", "shell", "console", "zsh"]);

/**
 * Splits `line` at its trailing comment: a `#` at the start of a word, outside quotes. Good
 * enough for what READMEs show (no `$#`, no `#` inside `${…}`), and said so here.
 */
export function splitComment(line: string): { code: string; comment: string } {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote !== undefined) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === "\\") {
      i++;
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]!))) {
      return { code: line.slice(0, i).trimEnd(), comment: line.slice(i + 1).trim() };
    }
  }
  return { code: line.trimEnd(), comment: "" };
}

const HEREDOC = /<<(-?)\s*(['"]?)([A-Za-z_][A-Za-z0-9_]*)\2/;
const EXIT_SAID = /\bexits?(?:\s+with)?(?:\s+code)?\s+(\d+)\b/i;

/** Every shell command shown in `markdown`, in order. */
export function shellCommands(markdown: string): ShownCommand[] {
  const lines = markdown.split("\n");
  const out: ShownCommand[] = [];
  let fence: { marker: string; language: string } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    if (fence === undefined) {
      const open = /^(\s*)(`{3,}|~{3,})\s*([\w+-]*)/.exec(raw);
      if (open) fence = { marker: open[2]!, language: open[3]!.toLowerCase() };
      continue;
    }
    if (raw.trim().startsWith(fence.marker) && raw.trim().replace(/[`~]/g, "") === "") {
      fence = undefined;
      continue;
    }
    if (!SHELL_LANGUAGES.has(fence.language)) continue;
    let first = raw;
    if (fence.language === "console") {
      const prompt = /^\s*\$ (.*)$/.exec(raw);
      if (!prompt) continue; // output
      first = prompt[1]!;
    }
    if (first.trim() === "" || first.trim().startsWith("#")) continue;
    const start = i;
    const parts = [first];
    // Continuations: a trailing backslash outside a comment.
    while (/\\$/.test(splitComment(parts[parts.length - 1]!).code) && i + 1 < lines.length) {
      i++;
      parts.push(fence.language === "console" ? lines[i]!.replace(/^\s*> ?/, "") : lines[i]!);
    }
    // A here-document: its body runs to the terminator line.
    const heredoc = HEREDOC.exec(parts.map((p) => splitComment(p).code).join("\n"));
    if (heredoc) {
      const [, dash, , word] = heredoc;
      while (i + 1 < lines.length) {
        i++;
        parts.push(lines[i]!);
        const end = dash === "-" ? lines[i]!.replace(/^\t+/, "") : lines[i]!;
        if (end === word) break;
      }
    }
    const text = parts.join("\n");
    const commandLines = heredoc
      ? parts.slice(0, parts.findIndex((p) => HEREDOC.test(p)) + 1)
      : parts;
    const split = commandLines.map(splitComment);
    const comment = split.map((s) => s.comment).join(" ");
    const bare = [...split.map((s) => s.code), ...parts.slice(commandLines.length)]
      .join("\n")
      .trim();
    const lastCode = split[split.length - 1]!.code;
    out.push({
      line: start + 1,
      text,
      bare,
      background: /(^|[^&])&$/.test(lastCode.trimEnd()),
      exitCode: Number(EXIT_SAID.exec(comment)?.[1] ?? 0),
    });
  }
  return out;
}
