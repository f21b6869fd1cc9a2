package flightsql

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	arrowsql "github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/stakhanov/stakhanov/analytics"
)

// Querier runs SQL that only reads and tells a result's schema beforehand.
// *analytics.Store is one.
type Querier interface {
	QueryArrowReadOnly(ctx context.Context, query string, fn func(array.RecordReader) error, args ...any) error
	ResultSchemaReadOnly(ctx context.Context, query string) (*arrow.Schema, error)
}

// Server is a Flight SQL server over a Querier.
type Server struct {
	o    Options
	q    Querier
	log  *slog.Logger
	sem  chan struct{}
	mem  memory.Allocator
	grpc *grpc.Server
}

// New returns a server over q; Serve starts it.
func New(q Querier, o Options) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	s := &Server{o: o, q: q, log: o.Logger, sem: make(chan struct{}, o.MaxConcurrent), mem: memory.DefaultAllocator}
	if s.log == nil {
		s.log = slog.Default()
	}
	impl := &sqlServer{s: s}
	impl.Alloc = s.mem
	if err := registerSqlInfo(impl, o); err != nil {
		return nil, err
	}
	auth := authenticator{tokens: o.Tokens, hint: o.TokenHint, log: s.log}
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(auth.unary),
		grpc.ChainStreamInterceptor(auth.stream),
		grpc.MaxRecvMsgSize(o.MaxSQLBytes + 64<<10),
	}
	if o.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(o.TLS)))
	}
	s.grpc = grpc.NewServer(opts...)
	flight.RegisterFlightServiceServer(s.grpc, arrowsql.NewFlightServerWithAllocator(impl, s.mem))
	return s, nil
}

// Serve serves on ln until Shutdown. A listener beyond loopback without
// credentials is refused (ErrNoCredentials) and closed.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.o.CheckExposure(ln.Addr()); err != nil {
		ln.Close()
		return err
	}
	err := s.grpc.Serve(ln)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Shutdown stops taking calls and waits for those running until ctx
// ends, then cancels them.
func (s *Server) Shutdown(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.grpc.Stop()
		<-done
	}
}

// admit takes a slot of the concurrency bound without waiting.
func (s *Server) admit() (release func(), err error) {
	select {
	case s.sem <- struct{}{}:
		return func() { <-s.sem }, nil
	default:
		return nil, status.Errorf(codes.ResourceExhausted, "%v: %d at once; try again", analytics.ErrBusy, s.o.MaxConcurrent)
	}
}

// toStatus is the gRPC status for err from a call that ran under ctx
// (with the query timeout).
func (s *Server) toStatus(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var se *analytics.StatementError
	switch {
	case errors.Is(err, analytics.ErrCorrupt):
		// the data, not the request, is at fault
		return status.Errorf(codes.DataLoss, "%v (the file must be rebuilt; the same query fails until then)", err)
	case errors.As(err, &se):
		return status.Errorf(codes.PermissionDenied, "refused: this server only reads: %v", err)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return status.Errorf(codes.DeadlineExceeded, "the query ran out of its %v: %v", s.o.QueryTimeout, err)
	case errors.Is(ctx.Err(), context.Canceled):
		return status.Errorf(codes.Canceled, "%v", err)
	case errors.Is(err, analytics.ErrBadSQL):
		return status.Errorf(codes.InvalidArgument, "%v", err)
	}
	return status.Errorf(codes.Internal, "%v", err)
}

// checkSQL refuses what is too long or empty, and transactions, before
// DuckDB sees it.
func (s *Server) checkSQL(query string, txn []byte) error {
	switch {
	case len(txn) > 0:
		return errNoTransactions
	case len(query) > s.o.MaxSQLBytes:
		return status.Errorf(codes.InvalidArgument, "SQL longer than %d bytes", s.o.MaxSQLBytes)
	case len(query) == 0:
		return status.Error(codes.InvalidArgument, "no SQL")
	}
	return nil
}

var errNoTransactions = status.Error(codes.InvalidArgument,
	"transactions are not supported: each statement runs in a read-only transaction of its own")

// schema tells query's result schema.
func (s *Server) schema(ctx context.Context, query string, txn []byte) (*arrow.Schema, error) {
	if err := s.checkSQL(query, txn); err != nil {
		return nil, err
	}
	release, err := s.admit()
	if err != nil {
		return nil, err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, s.o.QueryTimeout)
	defer cancel()
	sc, err := s.q.ResultSchemaReadOnly(ctx, query)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return sc, nil
}

// flightInfo answers a GetFlightInfo whose result DoGet reads with ticket.
func (s *Server) flightInfo(desc *flight.FlightDescriptor, sc *arrow.Schema, ticket []byte) *flight.FlightInfo {
	return &flight.FlightInfo{
		Endpoint:         []*flight.FlightEndpoint{{Ticket: &flight.Ticket{Ticket: ticket}}},
		FlightDescriptor: desc,
		Schema:           flight.SerializeSchema(sc, s.mem),
		TotalRecords:     -1,
		TotalBytes:       -1,
	}
}

// stream runs query and streams its result: the schema comes back once
// DuckDB has accepted and run it (so that a refused or failing statement
// is the call's error, not a broken stream), then one batch at a time,
// each handed on as DuckDB's reader yields it.
func (s *Server) stream(ctx context.Context, query string) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	if err := s.checkSQL(query, nil); err != nil {
		return nil, nil, err
	}
	release, err := s.admit()
	if err != nil {
		return nil, nil, err
	}
	qctx, cancel := context.WithTimeout(ctx, s.o.QueryTimeout)
	type started struct {
		schema *arrow.Schema
		err    error
	}
	ready := make(chan started, 1)
	ch := make(chan flight.StreamChunk)
	begun := time.Now()
	go func() {
		defer release()
		defer cancel()
		var rows, batches int64
		sent := false
		err := s.q.QueryArrowReadOnly(qctx, query, func(rr array.RecordReader) error {
			// From here the caller drains ch until it is closed.
			ready <- started{schema: rr.Schema()}
			sent = true
			for rr.Next() {
				rec := rr.RecordBatch()
				rec.Retain() // the reader releases its own on Next
				select {
				case ch <- flight.StreamChunk{Data: rec}:
					rows += rec.NumRows()
					batches++
				case <-qctx.Done():
					rec.Release()
					return qctx.Err()
				}
			}
			return rr.Err()
		})
		if !sent {
			ready <- started{err: s.toStatus(qctx, err)}
			return
		}
		if err != nil {
			// The stream ends with the error, never as a shorter result.
			ch <- flight.StreamChunk{Err: s.toStatus(qctx, err)}
			s.log.Warn("flight SQL: query failed after its result began", "err", err, "rows", rows)
		}
		close(ch)
		s.log.Debug("flight SQL query", "rows", rows, "batches", batches, "took", time.Since(begun), "sql", abbreviate(query, 200))
	}()
	st := <-ready
	if st.err != nil {
		s.log.Debug("flight SQL query refused", "err", st.err, "sql", abbreviate(query, 200))
		return nil, nil, st.err
	}
	return st.schema, ch, nil
}

func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// sqlServer answers Flight SQL's calls; what it does not override
// (Substrait, keys, type info, sessions) the base answers Unimplemented.
type sqlServer struct {
	arrowsql.BaseServer
	s *Server
}

func (f *sqlServer) GetFlightInfoStatement(ctx context.Context, cmd arrowsql.StatementQuery, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	sc, err := f.s.schema(ctx, cmd.GetQuery(), cmd.GetTransactionId())
	if err != nil {
		return nil, err
	}
	ticket, err := arrowsql.CreateStatementQueryTicket([]byte(cmd.GetQuery()))
	if err != nil {
		return nil, status.Errorf(codes.Internal, "making the ticket: %v", err)
	}
	return f.s.flightInfo(desc, sc, ticket), nil
}

func (f *sqlServer) GetSchemaStatement(ctx context.Context, cmd arrowsql.StatementQuery, _ *flight.FlightDescriptor) (*flight.SchemaResult, error) {
	sc, err := f.s.schema(ctx, cmd.GetQuery(), cmd.GetTransactionId())
	if err != nil {
		return nil, err
	}
	return &flight.SchemaResult{Schema: flight.SerializeSchema(sc, f.s.mem)}, nil
}

func (f *sqlServer) DoGetStatement(ctx context.Context, t arrowsql.StatementQueryTicket) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	return f.s.stream(ctx, string(t.GetStatementHandle()))
}

// CreatePreparedStatement answers with the result's schema: the JDBC
// driver takes a prepared statement with no result columns for an update.
func (f *sqlServer) CreatePreparedStatement(ctx context.Context, req arrowsql.ActionCreatePreparedStatementRequest) (arrowsql.ActionCreatePreparedStatementResult, error) {
	var res arrowsql.ActionCreatePreparedStatementResult
	sc, err := f.s.schema(ctx, req.GetQuery(), req.GetTransactionId())
	if err != nil {
		return res, err
	}
	isUpdate := false
	res.Handle, res.DatasetSchema, res.IsUpdate = []byte(req.GetQuery()), sc, &isUpdate
	return res, nil
}

// ClosePreparedStatement has nothing to free: the handle is the SQL.
func (f *sqlServer) ClosePreparedStatement(context.Context, arrowsql.ActionClosePreparedStatementRequest) error {
	return nil
}

func (f *sqlServer) GetFlightInfoPreparedStatement(ctx context.Context, cmd arrowsql.PreparedStatementQuery, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	sc, err := f.s.schema(ctx, string(cmd.GetPreparedStatementHandle()), nil)
	if err != nil {
		return nil, err
	}
	// The descriptor's command is itself a ticket DoGet routes to
	// DoGetPreparedStatement.
	return f.s.flightInfo(desc, sc, desc.Cmd), nil
}

func (f *sqlServer) GetSchemaPreparedStatement(ctx context.Context, cmd arrowsql.PreparedStatementQuery, _ *flight.FlightDescriptor) (*flight.SchemaResult, error) {
	sc, err := f.s.schema(ctx, string(cmd.GetPreparedStatementHandle()), nil)
	if err != nil {
		return nil, err
	}
	return &flight.SchemaResult{Schema: flight.SerializeSchema(sc, f.s.mem)}, nil
}

func (f *sqlServer) DoGetPreparedStatement(ctx context.Context, cmd arrowsql.PreparedStatementQuery) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	return f.s.stream(ctx, string(cmd.GetPreparedStatementHandle()))
}

// DoPutPreparedStatementQuery binds parameters. An empty set is accepted
// (some clients bind one always); values are refused, naming the way out.
func (f *sqlServer) DoPutPreparedStatementQuery(_ context.Context, cmd arrowsql.PreparedStatementQuery, r flight.MessageReader, _ flight.MetadataWriter) ([]byte, error) {
	for r.Next() {
		if r.RecordBatch().NumRows() > 0 {
			return nil, status.Error(codes.InvalidArgument, "parameters are not supported: write the values into the SQL")
		}
	}
	return cmd.GetPreparedStatementHandle(), nil
}

var errReadOnly = "refused: this server only reads (SELECT, and DESCRIBE, SHOW, SUMMARIZE, EXPLAIN of a SELECT)"

func (f *sqlServer) DoPutCommandStatementUpdate(_ context.Context, cmd arrowsql.StatementUpdate) (int64, error) {
	return 0, status.Errorf(codes.PermissionDenied, "%s: an update (%q) is never run", errReadOnly, abbreviate(cmd.GetQuery(), 80))
}

func (f *sqlServer) DoPutPreparedStatementUpdate(_ context.Context, cmd arrowsql.PreparedStatementUpdate, _ flight.MessageReader) (int64, error) {
	return 0, status.Errorf(codes.PermissionDenied, "%s: an update (%q) is never run", errReadOnly, abbreviate(string(cmd.GetPreparedStatementHandle()), 80))
}

func (f *sqlServer) DoPutCommandSubstraitPlan(context.Context, arrowsql.StatementSubstraitPlan) (int64, error) {
	return 0, status.Errorf(codes.PermissionDenied, "%s: a Substrait update is never run", errReadOnly)
}

func (f *sqlServer) DoPutCommandStatementIngest(_ context.Context, cmd arrowsql.StatementIngest, _ flight.MessageReader) (int64, error) {
	return 0, status.Errorf(codes.PermissionDenied, "%s: nothing is ingested into %q", errReadOnly, cmd.GetTable())
}

func (f *sqlServer) BeginTransaction(context.Context, arrowsql.ActionBeginTransactionRequest) ([]byte, error) {
	return nil, errNoTransactions
}

func (f *sqlServer) EndTransaction(context.Context, arrowsql.ActionEndTransactionRequest) error {
	return errNoTransactions
}

func (f *sqlServer) BeginSavepoint(context.Context, arrowsql.ActionBeginSavepointRequest) ([]byte, error) {
	return nil, errNoTransactions
}
