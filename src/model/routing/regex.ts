// RE2 patterns (what Istio validates and Envoy runs) as anchored JavaScript RegExps, for the
// full-string matching Envoy's safe_regex does. Patterns JavaScript cannot express return null.

/** Characters that keep their backslash in a JavaScript pattern (valid identity escapes under /u). */
const SYNTAX = new Set("^$\\.*+?()[]{}|/-".split(""));
const POSIX: Record<string, string> = {
  alnum: "0-9A-Za-z",
  alpha: "A-Za-z",
  ascii: "\\x00-\\x7F",
  blank: "\\t ",
  cntrl: "\\x00-\\x1F\\x7F",
  digit: "0-9",
  graph: "!-~",
  lower: "a-z",
  print: " -~",
  punct: "!-\\/:-@\\[-`{-~",
  space: "\\t\\n\\v\\f\\r ",
  upper: "A-Z",
  word: "0-9A-Za-z_",
  xdigit: "0-9A-Fa-f",
};

function escapeLiteral(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}

/** Translate an RE2 pattern to a JavaScript source and flags; null when it cannot be expressed. */
export function re2ToJs(re: string): { source: string; flags: string } | null {
  let flags = "";
  let i = 0;
  // Leading inline flags apply to the whole pattern; JavaScript has them only as RegExp flags.
  const lead = /^\(\?([imsU]+)\)/.exec(re);
  if (lead) {
    const f = lead[1] ?? "";
    if (f.includes("U")) return null;
    for (const c of f) if (!flags.includes(c)) flags += c;
    i = lead[0].length;
  }
  let out = "";
  let inClass = false;
  for (; i < re.length; i++) {
    const c = re.charAt(i);
    if (c === "\\") {
      const n = re.charAt(i + 1);
      if (n === "") return null;
      i++;
      if (n === "Q") {
        const end = re.indexOf("\\E", i + 1);
        out += escapeLiteral(end < 0 ? re.slice(i + 1) : re.slice(i + 1, end));
        i = end < 0 ? re.length : end + 1;
        continue;
      }
      if (n === "z" && !inClass) out += "$";
      else if (n === "A" && !inClass) out += "^";
      else if (n === "p" || n === "P") {
        if (!flags.includes("u")) flags += "u";
        if (re.charAt(i + 1) === "{") {
          const end = re.indexOf("}", i);
          if (end < 0) return null;
          out += `\\${n}{${re.slice(i + 2, end)}}`;
          i = end;
        } else {
          out += `\\${n}{${re.charAt(i + 1)}}`;
          i++;
        }
      } else if (n === "x" && re.charAt(i + 1) === "{") {
        const end = re.indexOf("}", i);
        if (end < 0) return null;
        if (!flags.includes("u")) flags += "u";
        out += `\\u{${re.slice(i + 2, end)}}`;
        i = end;
      } else if (/[A-Za-z0-9]/.test(n)) {
        if (n === "C" || n === "k") return null;
        out += `\\${n}`;
      } else {
        out += SYNTAX.has(n) ? `\\${n}` : escapeLiteral(n);
      }
      continue;
    }
    if (inClass) {
      if (c === "[" && re.charAt(i + 1) === ":") {
        const close = re.indexOf(":]", i + 2);
        const name = close < 0 ? "" : re.slice(i + 2, close);
        const negated = name.startsWith("^");
        const cls = POSIX[negated ? name.slice(1) : name];
        if (cls === undefined || negated) return null;
        out += cls;
        i = close + 1;
        continue;
      }
      if (c === "]") inClass = false;
      out += c === "[" ? "\\[" : c;
      continue;
    }
    if (c === "[") {
      inClass = true;
      out += c;
      if (re.charAt(i + 1) === "^") out += re.charAt(++i);
      if (re.charAt(i + 1) === "]") {
        out += "\\]";
        i++;
      }
      continue;
    }
    if (c === "(" && re.charAt(i + 1) === "?") {
      const rest = re.slice(i + 2);
      const named = /^P?<([A-Za-z_][A-Za-z0-9_]*)>/.exec(rest);
      if (named) {
        out += `(?<${named[1] ?? ""}>`;
        i += 1 + named[0].length;
        continue;
      }
      if (rest.startsWith(":")) {
        out += "(?:";
        i += 2;
        continue;
      }
      return null; // inline flags inside the pattern, lookaround: not expressible
    }
    out += c;
  }
  return { source: out, flags };
}

/** A full-match RegExp for an RE2 pattern (Envoy's safe_regex), or null when untranslatable. */
export function compileRe2(re: string, ignoreCase = false): RegExp | null {
  const js = re2ToJs(re);
  if (!js) return null;
  let flags = js.flags;
  if (ignoreCase && !flags.includes("i")) flags += "i";
  try {
    return new RegExp(`^(?:${js.source})$`, flags);
  } catch {
    return null;
  }
}
