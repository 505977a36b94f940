package console

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
)

func (c *Console) importRoutes() []route {
	return []route{
		{pattern: "GET /import", h: c.importPage},
		{pattern: "POST /import", multipart: true, h: c.importUpload},
		{pattern: "GET /import/results/{id}", h: c.importResultPage},
	}
}

// importResult is what an upload came to, kept in the session for its
// page (post, redirect, get).
type importResult struct {
	ID       string
	Name     string
	At       time.Time
	Bytes    int64
	Files    int // of a zipped tree
	Imported []store.ImportResult
	Refused  []string // the problems, one a line, when it was refused
	Skipped  []string // zip entries that are no part of a tree
}

// importSeq numbers the import results.
var importSeq atomic.Int64

type importView struct {
	MaxBytes int64
}

func (c *Console) importPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	c.render(w, rq, http.StatusOK, "import", "Import", importView{MaxBytes: c.cfg.MaxUploadBytes})
	return nil
}

// importUpload receives an upload as multipart/form-data: first the CSRF
// token (checked before anything else is read), then the file. A .zip is
// an update tree, unpacked entry by entry into the upload; anything else
// is one bundle file (a cabinet, a self-extracting .exe or an RPM), which
// the service tells apart by content. The one importer of the service
// imports it, all or nothing.
func (c *Console) importUpload(w http.ResponseWriter, r *http.Request, rq *request) error {
	r.Body = http.MaxBytesReader(w, r.Body, c.cfg.MaxUploadBytes+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		return fmt.Errorf("%w: send the upload as multipart/form-data (the import page's form)", service.ErrInvalid)
	}
	part, err := mr.NextPart()
	if err != nil || part.FormName() != "csrf" {
		return errCSRF
	}
	token, err := io.ReadAll(io.LimitReader(part, 256))
	if err != nil {
		return err
	}
	if err := rq.checkCSRF(string(token)); err != nil {
		return err
	}
	part, err = mr.NextPart()
	if err != nil || part.FormName() != "bundle" || part.FileName() == "" {
		return fmt.Errorf("%w: choose a file to import", service.ErrInvalid)
	}
	name := path.Base(strings.ReplaceAll(part.FileName(), "\\", "/"))
	up, err := c.svc.NewUpload(rq.ctx, name)
	if err != nil {
		return err
	}
	defer up.Close()
	res := importResult{ID: strconv.FormatInt(importSeq.Add(1), 10), Name: name, At: c.cfg.Now()}
	if strings.EqualFold(path.Ext(name), ".zip") {
		err = c.spoolZip(rq, part, up, &res)
	} else {
		err = spoolFile(part, up, &res)
	}
	if err == nil {
		res.Imported, err = c.svc.Import(rq.ctx, up, nil)
	}
	if err != nil {
		if !refusal(err) {
			return err
		}
		res.Refused = strings.Split(err.Error(), "\n")
		c.log.Info("console: import refused", "name", name, "actor", rq.p.Name, "err", err)
	}
	c.sessions.addImport(rq.sid, res)
	http.Redirect(w, r, "/import/results/"+res.ID, http.StatusSeeOther)
	return nil
}

// refusal reports whether err refuses the bundle itself (its page lists
// why), rather than failing the request.
func refusal(err error) bool {
	return errors.Is(err, service.ErrInvalid) || errors.Is(err, service.ErrTooLarge) ||
		errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrIntegrity)
}

func spoolFile(src io.Reader, up *service.Upload, res *importResult) error {
	fw, err := up.File()
	if err != nil {
		return err
	}
	n, err := io.Copy(fw, src)
	res.Bytes = n
	if cerr := fw.Close(); err == nil {
		err = cerr
	}
	return err
}

// spoolZip keeps the zip in a temporary file (its directory is at its
// end) and unpacks it into the upload.
func (c *Console) spoolZip(rq *request, src io.Reader, up *service.Upload, res *importResult) error {
	tmp, err := os.CreateTemp(c.cfg.SpoolDir, "console-zip-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := io.Copy(tmp, src)
	res.Bytes = n
	if err != nil {
		return err
	}
	zr, err := zip.NewReader(tmp, n)
	if err != nil {
		return fmt.Errorf("%w: %s is not a zip file that can be read: %v", service.ErrInvalid, res.Name, err)
	}
	rep, err := unzipTree(rq.ctx, zr, up, c.cfg.MaxZipEntries)
	res.Files, res.Skipped = rep.Files, rep.Skipped
	return err
}

func (c *Console) importResultPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	id := r.PathValue("id")
	for _, res := range rq.s.imports {
		if res.ID == id {
			c.render(w, rq, http.StatusOK, "importresult", "Import of "+res.Name, res)
			return nil
		}
	}
	return fmt.Errorf("%w: this import's result is no longer kept (a session keeps its last %d): see the history", errNoPage, maxImportResults)
}
