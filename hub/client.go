package hub

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Progress receives download progress; tests pass nil (nothing reported) and
// the command line shows bars.
type Progress interface {
	// Start announces a download of size bytes, have of which are already on
	// disk from an interrupted download.
	Start(name string, size, have int64)
	Add(name string, n int64)
	Done(name string, err error)
}

// Client pulls repositories from one Hub endpoint into one cache.
type Client struct {
	Env
	HTTP     *http.Client // default http.DefaultClient; its redirect policy is not used
	Progress Progress     // nil reports nothing
	// Verify re-hashes files already in the cache (else their size is
	// trusted: blobs are renamed into place only after their hash was
	// checked) and downloads again those that do not match.
	Verify bool
}

// maxRedirects bounds the redirect chain of one request.
const maxRedirects = 10

// get issues GET rawURL, following redirects itself so that the token is
// sent only to the endpoint's own origin (never to a CDN on another host)
// and the headers of the first answer (X-Repo-Commit, X-Linked-Etag, which a
// CDN does not repeat) are kept. from > 0 asks for the bytes from that
// offset on.
func (c *Client) get(ctx context.Context, rawURL string, from int64) (resp *http.Response, first http.Header, err error) {
	origin, err := url.Parse(c.Endpoint)
	if err != nil {
		return nil, nil, fmt.Errorf("hub endpoint %q: %w", c.Endpoint, err)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", rawURL, err)
	}
	hc := http.Client{Timeout: 0}
	if c.HTTP != nil {
		hc = *c.HTTP
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for hop := 0; ; hop++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, nil, fmt.Errorf("GET %s: %w", redact(u), err)
		}
		// identity: a transparently gunzipped body would break sizes and ranges.
		req.Header.Set("Accept-Encoding", "identity")
		req.Header.Set("User-Agent", "fspo")
		if from > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", from))
		}
		if c.Token != "" && u.Scheme == origin.Scheme && u.Host == origin.Host {
			req.Header.Set("Authorization", "Bearer "+c.Token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, nil, fmt.Errorf("GET %s: %w", redact(u), err)
		}
		if first == nil {
			first = resp.Header
		}
		if resp.StatusCode < 300 || resp.StatusCode > 399 || resp.StatusCode == http.StatusNotModified {
			return resp, first, nil
		}
		loc := resp.Header.Get("Location")
		drain(resp)
		if loc == "" || hop >= maxRedirects {
			return nil, nil, fmt.Errorf("GET %s: %s with no usable redirect (hop %d)", redact(u), resp.Status, hop)
		}
		if u, err = u.Parse(loc); err != nil {
			return nil, nil, fmt.Errorf("GET %s: redirect to %q: %w", redact(u), loc, err)
		}
	}
}

// redact drops the query (signed CDN URLs carry credentials there).
func redact(u *url.URL) string {
	v := *u
	if v.RawQuery != "" {
		v.RawQuery = "…"
	}
	v.User = nil
	return v.String()
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// statusError explains a failed answer about ref (and file, when fetching
// one), reading the Hub's X-Error-Code header.
func (c *Client) statusError(resp *http.Response, ref Ref, file string) error {
	code := resp.Header.Get("X-Error-Code")
	page := c.Endpoint + "/" + ref.Repo
	var err error
	switch {
	case code == "RevisionNotFound":
		err = fmt.Errorf("revision %q of %s not found on %s", ref.Revision, ref.Repo, c.Endpoint)
	case code == "EntryNotFound" || (resp.StatusCode == http.StatusNotFound && file != "" && code == ""):
		err = fmt.Errorf("file %s not found in %s at %s", file, ref.Repo, ref.Revision)
	case (code == "RepoNotFound" || resp.StatusCode == http.StatusNotFound) && c.Token != "":
		err = fmt.Errorf("repository %s not found on %s (or the token in HF_TOKEN has no access to it)", ref.Repo, c.Endpoint)
	case code == "RepoNotFound" || resp.StatusCode == http.StatusNotFound:
		err = fmt.Errorf("repository %s not found on %s (if it is private, set HF_TOKEN)", ref.Repo, c.Endpoint)
	case (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden || code == "GatedRepo") && c.Token == "":
		err = fmt.Errorf("%s is gated or private: set HF_TOKEN (an access token from %s/settings/tokens, after accepting the model's terms at %s)", ref.Repo, c.Endpoint, page)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden || code == "GatedRepo":
		err = fmt.Errorf("%s is gated or private and the token in HF_TOKEN has no access: accept the model's terms at %s, or use another token", ref.Repo, page)
	default:
		err = fmt.Errorf("%s: %s", ref, resp.Status)
	}
	if msg := resp.Header.Get("X-Error-Message"); msg != "" {
		err = fmt.Errorf("%w (server: %s)", err, msg)
	}
	return err
}

// infoURL is GET /api/models/{repo}/revision/{rev}?blobs=true, which lists
// the files of the revision with their sizes and hashes.
func (c *Client) infoURL(ref Ref) string {
	return c.Endpoint + "/api/models/" + ref.Repo + "/revision/" + url.PathEscape(ref.Revision) + "?blobs=true"
}

// fileURL is GET /{repo}/resolve/{commit}/{file}.
func (c *Client) fileURL(repo, commit, name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return c.Endpoint + "/" + repo + "/resolve/" + commit + "/" + strings.Join(parts, "/")
}

// info fetches the revision's commit and files.
func (c *Client) info(ctx context.Context, ref Ref) (string, map[string]File, error) {
	u := c.infoURL(ref)
	resp, _, err := c.get(ctx, u, 0)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", nil, c.statusError(resp, ref, "")
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return "", nil, fmt.Errorf("GET %s: %w", u, err)
	}
	commit, files, err := parseInfo(data)
	if err != nil {
		return "", nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return commit, files, nil
}
