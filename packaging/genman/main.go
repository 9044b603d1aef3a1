// Command genman writes the man pages of gvsd and gvs from their own help
// text, so that a page never says something the program's -h does not:
//
//	go run ./packaging/genman -out DIR -version V -date YYYY-MM-DD bin/gvsd bin/gvs
//
// It runs `gvsd --help`, `gvs --help` and `gvs CMD --help` for every
// subcommand (two levels deep), and turns the text into roff: a line that
// ends with ':' starts a subsection, an indented line with an option or a
// command and its description becomes a tagged paragraph, anything else is
// running text. No man page template library does this for two formats of
// help (gvsd's ovs-vswitchd-style text and cobra's), and the rules are few.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

func main() {
	out := flag.String("out", ".", "directory for the pages")
	version := flag.String("version", "", "version shown in the footer")
	date := flag.String("date", "", "date shown in the footer (YYYY-MM-DD)")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: genman [-out DIR] [-version V] [-date D] GVSD GVS")
		os.Exit(2)
	}
	gvsd, gvs := flag.Arg(0), flag.Arg(1)
	if err := writePage(*out, "gvsd", *version, *date, gvsdPage(gvsd)); err != nil {
		fail(err)
	}
	if err := writePage(*out, "gvs", *version, *date, gvsPage(gvs)); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "genman:", err)
	os.Exit(1)
}

// help returns a program's help text; some programs exit non-zero after
// printing it, which is not an error here as long as it printed.
func help(bin string, args ...string) string {
	var b bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &b, &b
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	err := cmd.Run()
	if b.Len() == 0 {
		fail(fmt.Errorf("%s %s printed no help: %v", bin, strings.Join(args, " "), err))
	}
	return b.String()
}

// page is a man page before rendering.
type page struct {
	summary  string // the NAME line's text after the dash
	synopsis []string
	sections []section
}

type section struct {
	title string
	body  string // help text, rendered by renderText
}

// gvsdPage: the first line is "gvsd: SUMMARY", then "usage: ...", then
// the description and the option groups.
func gvsdPage(bin string) page {
	text := help(bin, "--help")
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	var p page
	if len(lines) > 0 {
		_, p.summary, _ = strings.Cut(lines[0], ": ")
		lines = lines[1:]
	}
	if len(lines) > 0 {
		if u, ok := strings.CutPrefix(lines[0], "usage: "); ok {
			p.synopsis = []string{u}
			lines = lines[1:]
		}
	}
	p.sections = []section{{title: "DESCRIPTION", body: strings.Join(lines, "\n")}}
	p.sections = append(p.sections, section{title: "SEE ALSO",
		body: "gvs(8), ovs-vswitchd(8), ovs-vsctl(8), ovs-ofctl(8), ovs-appctl(8), ovs-vswitchd.conf.db(5)"})
	return p
}

// gvsPage: cobra's help for the root and every subcommand.
func gvsPage(bin string) page {
	root := help(bin, "--help")
	desc, usage := cobraParts(root)
	p := page{summary: "the gvs command line: show, flows, capture and more, talking to gvsd directly",
		synopsis: usage}
	p.sections = append(p.sections, section{title: "DESCRIPTION", body: desc})
	for _, cmd := range subcommands(root) {
		sub := help(bin, cmd, "--help")
		p.sections = append(p.sections, section{title: "gvs " + cmd, body: strings.TrimRight(sub, "\n")})
		for _, sc := range subcommands(sub) {
			p.sections = append(p.sections, section{title: "gvs " + cmd + " " + sc,
				body: strings.TrimRight(help(bin, cmd, sc, "--help"), "\n")})
		}
	}
	p.sections = append(p.sections, section{title: "SEE ALSO", body: "gvsd(8), ovs-ofctl(8), ovs-fields(7), ovs-actions(7), tcpdump(8)"})
	return p
}

// cobraParts splits cobra's root help into the text before "Usage:" and
// the usage lines.
func cobraParts(text string) (desc string, usage []string) {
	before, after, _ := strings.Cut(text, "\nUsage:\n")
	for _, l := range strings.Split(after, "\n") {
		if strings.TrimSpace(l) == "" {
			break
		}
		usage = append(usage, strings.TrimSpace(l))
	}
	rest := after
	if i := strings.Index(after, "\n\n"); i >= 0 {
		rest = after[i+2:]
	}
	return strings.TrimSpace(before) + "\n\n" + rest, usage
}

var commandLine = regexp.MustCompile(`^  ([a-z][a-z0-9-]*)\s{2,}`)

// subcommands lists the commands under "Available Commands:", less cobra's
// own help and completion.
func subcommands(text string) []string {
	_, after, ok := strings.Cut(text, "Available Commands:\n")
	if !ok {
		return nil
	}
	var cmds []string
	for _, l := range strings.Split(after, "\n") {
		m := commandLine.FindStringSubmatch(l)
		if m == nil {
			break
		}
		if m[1] != "help" && m[1] != "completion" {
			cmds = append(cmds, m[1])
		}
	}
	return cmds
}

func writePage(dir, name, version, date string, p page) error {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH %s 8 %q %q \"gvs manual\"\n", strings.ToUpper(name), date, "gvs "+version)
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", name, escape(p.summary))
	b.WriteString(".SH SYNOPSIS\n")
	for i, s := range p.synopsis {
		if i > 0 {
			b.WriteString(".br\n")
		}
		b.WriteString(escape(s) + "\n")
	}
	for _, s := range p.sections {
		if s.title == strings.ToUpper(s.title) {
			fmt.Fprintf(&b, ".SH %s\n", s.title)
		} else {
			fmt.Fprintf(&b, ".SS %q\n", s.title)
		}
		renderText(&b, s.body)
	}
	return os.WriteFile(filepath.Join(dir, name+".8"), []byte(b.String()), 0o644)
}

// entry is an indented option or command with its description after a gap
// of two or more spaces.
var entry = regexp.MustCompile(`^\s{1,8}(-\S.*?|[a-z][\w-]*)\s{2,}(\S.*)$`)

// renderText turns help text into roff paragraphs.
func renderText(b *strings.Builder, text string) {
	const (
		running = iota
		inEntry
		inExample
	)
	state := running
	for _, l := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(l)
		switch {
		case trimmed == "":
			b.WriteString(".PP\n")
			state = running
		case !strings.HasPrefix(l, " ") && !strings.HasPrefix(l, "-") && strings.HasSuffix(trimmed, ":"):
			fmt.Fprintf(b, ".PP\n.B %s\n", escape(trimmed))
			state = running
		case entry.MatchString(l):
			m := entry.FindStringSubmatch(l)
			fmt.Fprintf(b, ".TP\n.B %s\n%s\n", escape(strings.TrimSpace(m[1])), escape(m[2]))
			state = inEntry
		case state == inEntry && strings.HasPrefix(l, "    "):
			b.WriteString(escape(trimmed) + "\n")
		case strings.HasPrefix(l, "  "):
			// An example or an indented line of its own.
			fmt.Fprintf(b, ".br\n\\ \\ %s\n", escape(trimmed))
			state = inExample
		default:
			if state != running {
				b.WriteString(".PP\n")
			}
			b.WriteString(escape(trimmed) + "\n")
			state = running
		}
	}
}

// escape makes a line safe for roff: backslashes, hyphens that must stay
// ASCII (options are copied from pages), and a leading dot or quote.
func escape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
