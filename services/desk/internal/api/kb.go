package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/omnibus-dev/omnibus/pkg/auth"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
	"github.com/omnibus-dev/omnibus/services/desk/internal/kb"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// The knowledge base's routes: every agent reads and searches it, supervisors write it.
func (a *API) knowledgeRoutes() []Route {
	return []Route{
		{"GET", "/api/kb/articles", false, a.listArticles},
		{"POST", "/api/kb/articles", false, a.createArticle},
		{"GET", "/api/kb/articles/{id}", false, a.getArticle},
		{"PUT", "/api/kb/articles/{id}", false, a.putArticle},
		{"DELETE", "/api/kb/articles/{id}", false, a.deleteArticle},
	}
}

// KnowledgeForSuggestion is how many articles an AI suggestion request carries.
const KnowledgeForSuggestion = 3

// ArticleRequest is the body of POST and PUT /api/kb/articles.
type ArticleRequest struct {
	Title    string   `json:"title"`
	Body     string   `json:"body"`
	Tags     []string `json:"tags"`
	Language string   `json:"language"`
}

func (q *ArticleRequest) validate() (kb.Article, error) {
	a := kb.Article{Title: strings.TrimSpace(q.Title), Body: strings.TrimSpace(q.Body), Language: q.Language, Tags: []string{}}
	switch {
	case a.Title == "" || utf8.RuneCountInString(a.Title) > 200:
		return a, errors.New("title must be 1-200 characters")
	case a.Body == "" || utf8.RuneCountInString(a.Body) > 4000:
		return a, errors.New("body must be 1-4000 characters")
	case a.Language != "zh" && a.Language != "en":
		return a, errors.New("language must be zh or en")
	case len(q.Tags) > 20:
		return a, errors.New("at most 20 tags")
	}
	for _, t := range q.Tags {
		t = strings.TrimSpace(t)
		if t == "" || utf8.RuneCountInString(t) > 40 {
			return a, errors.New("tags must be 1-40 characters each")
		}
		a.Tags = append(a.Tags, t)
	}
	return a, nil
}

func (a *API) listArticles(w http.ResponseWriter, r *http.Request) {
	q, lang := strings.TrimSpace(r.URL.Query().Get("q")), r.URL.Query().Get("language")
	if lang != "" && lang != "zh" && lang != "en" {
		fail(w, http.StatusBadRequest, "language must be zh or en")
		return
	}
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 500 {
			fail(w, http.StatusBadRequest, "limit must be 1-500")
			return
		}
		limit = n
	}
	var list []store.Article
	var err error
	if q != "" {
		list, err = a.Store.SearchArticles(r.Context(), q, lang, limit)
	} else {
		list, err = a.Store.Articles(r.Context(), lang, limit)
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	webhook.WriteJSON(w, http.StatusOK, map[string]any{"articles": list})
}

func (a *API) getArticle(w http.ResponseWriter, r *http.Request) {
	art, err := a.Store.GetArticle(r.Context(), r.PathValue("id"))
	if err != nil {
		a.internal(w, r, err)
		return
	}
	webhook.WriteJSON(w, http.StatusOK, art)
}

// supervisor answers 403 and reports false unless the caller is a supervisor.
func supervisor(w http.ResponseWriter, r *http.Request) bool {
	if !principal(r).HasRole(auth.RoleSupervisor) {
		fail(w, http.StatusForbidden, "only supervisors edit the knowledge base")
		return false
	}
	return true
}

func (a *API) createArticle(w http.ResponseWriter, r *http.Request) { a.writeArticle(w, r, "") }
func (a *API) putArticle(w http.ResponseWriter, r *http.Request) {
	a.writeArticle(w, r, r.PathValue("id"))
}

func (a *API) writeArticle(w http.ResponseWriter, r *http.Request, id string) {
	if !supervisor(w, r) {
		return
	}
	var req ArticleRequest
	if !readJSON(w, r, &req) {
		return
	}
	art, err := req.validate()
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	stored, err := a.Store.PutArticle(r.Context(), id, art, principal(r).AgentID)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	code := http.StatusOK
	if id == "" {
		code = http.StatusCreated
	}
	webhook.WriteJSON(w, code, stored)
}

func (a *API) deleteArticle(w http.ResponseWriter, r *http.Request) {
	if !supervisor(w, r) {
		return
	}
	if err := a.Store.DeleteArticle(r.Context(), r.PathValue("id")); err != nil {
		a.internal(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// knowledgeFor returns the articles that best match the customers' recent turns of an AI
// suggestion request's data (its context, as the desk filled it or the caller gave it), as the
// request's knowledge. A failed search costs the suggestion its grounding, not the request.
func (a *API) knowledgeFor(ctx context.Context, data map[string]any) []map[string]any {
	var turns []struct{ Role, Text string }
	raw, _ := json.Marshal(data["context"])
	_ = json.Unmarshal(raw, &turns)
	var texts []string
	for i := len(turns) - 1; i >= 0 && len(texts) < 5; i-- {
		if turns[i].Role == "customer" {
			texts = append(texts, turns[i].Text)
		}
	}
	lang, _ := data["language"].(string)
	if base, _, _ := strings.Cut(lang, "-"); base != "" {
		lang = base
	}
	list, err := a.Store.SearchArticles(ctx, strings.Join(texts, "\n"), lang, KnowledgeForSuggestion)
	if err != nil {
		a.Log.Warn("knowledge base search failed; the suggestion goes without articles", "err", err)
	}
	out := []map[string]any{}
	for _, art := range list {
		out = append(out, map[string]any{"id": art.ID, "title": art.Title, "body": art.Body, "language": art.Language, "tags": art.Tags})
	}
	return out
}
