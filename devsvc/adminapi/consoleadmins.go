package adminapi

import (
	"context"

	pb "github.com/opendus/opendus/devsvc/adminapi/adminpb"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/firmware"
)

func consoleAdminPB(a firmware.ConsoleAdmin) *pb.ConsoleAdmin {
	return &pb.ConsoleAdmin{Name: a.Name, Role: a.Role, Disabled: a.Disabled, Created: ts(a.Created), Updated: ts(a.Updated)}
}

func consoleAdminFromPB(p *pb.ConsoleAdmin) firmware.ConsoleAdmin {
	return firmware.ConsoleAdmin{Name: p.GetName(), Role: p.GetRole(), Disabled: p.GetDisabled(), Created: fromTS(p.GetCreated()), Updated: fromTS(p.GetUpdated())}
}

// AddConsoleAdmin implements Admin.AddConsoleAdmin.
func (s *Server) AddConsoleAdmin(ctx context.Context, req *pb.AddConsoleAdminRequest) (*pb.ConsoleAdmin, error) {
	a, err := s.svc.AddConsoleAdmin(ctx, req.GetName(), service.Role(req.GetRole()), req.GetPassword())
	if err != nil {
		return nil, err
	}
	return consoleAdminPB(a), nil
}

// SetConsoleAdminPassword implements Admin.SetConsoleAdminPassword.
func (s *Server) SetConsoleAdminPassword(ctx context.Context, req *pb.SetConsoleAdminPasswordRequest) (*pb.ConsoleAdmin, error) {
	a, err := s.svc.SetConsoleAdminPassword(ctx, req.GetName(), req.GetPassword())
	if err != nil {
		return nil, err
	}
	return consoleAdminPB(a), nil
}

// ListConsoleAdmins implements Admin.ListConsoleAdmins.
func (s *Server) ListConsoleAdmins(ctx context.Context, _ *pb.ListConsoleAdminsRequest) (*pb.ListConsoleAdminsReply, error) {
	as, err := s.svc.ConsoleAdmins(ctx)
	if err != nil {
		return nil, err
	}
	r := &pb.ListConsoleAdminsReply{}
	for _, a := range as {
		r.Admins = append(r.Admins, consoleAdminPB(a))
	}
	return r, nil
}

// SetConsoleAdminDisabled implements Admin.SetConsoleAdminDisabled.
func (s *Server) SetConsoleAdminDisabled(ctx context.Context, req *pb.SetConsoleAdminDisabledRequest) (*pb.ConsoleAdmin, error) {
	a, err := s.svc.SetConsoleAdminDisabled(ctx, req.GetName(), req.GetDisabled())
	if err != nil {
		return nil, err
	}
	return consoleAdminPB(a), nil
}

// RemoveConsoleAdmin implements Admin.RemoveConsoleAdmin.
func (s *Server) RemoveConsoleAdmin(ctx context.Context, req *pb.RemoveConsoleAdminRequest) (*pb.RemoveConsoleAdminReply, error) {
	if err := s.svc.RemoveConsoleAdmin(ctx, req.GetName()); err != nil {
		return nil, err
	}
	return &pb.RemoveConsoleAdminReply{}, nil
}

// AddConsoleAdmin adds a console admin with role (admin or readonly) and
// password.
func (c *Client) AddConsoleAdmin(ctx context.Context, name, role, password string) (firmware.ConsoleAdmin, error) {
	r, err := c.c.AddConsoleAdmin(ctx, &pb.AddConsoleAdminRequest{Name: name, Role: role, Password: password})
	if err != nil {
		return firmware.ConsoleAdmin{}, c.wrap(err)
	}
	return consoleAdminFromPB(r), nil
}

// SetConsoleAdminPassword sets a console admin's password.
func (c *Client) SetConsoleAdminPassword(ctx context.Context, name, password string) (firmware.ConsoleAdmin, error) {
	r, err := c.c.SetConsoleAdminPassword(ctx, &pb.SetConsoleAdminPasswordRequest{Name: name, Password: password})
	if err != nil {
		return firmware.ConsoleAdmin{}, c.wrap(err)
	}
	return consoleAdminFromPB(r), nil
}

// ConsoleAdmins lists the console admins.
func (c *Client) ConsoleAdmins(ctx context.Context) ([]firmware.ConsoleAdmin, error) {
	r, err := c.c.ListConsoleAdmins(ctx, &pb.ListConsoleAdminsRequest{})
	if err != nil {
		return nil, c.wrap(err)
	}
	return convert(r.GetAdmins(), consoleAdminFromPB), nil
}

// SetConsoleAdminDisabled disables or enables a console admin.
func (c *Client) SetConsoleAdminDisabled(ctx context.Context, name string, disabled bool) (firmware.ConsoleAdmin, error) {
	r, err := c.c.SetConsoleAdminDisabled(ctx, &pb.SetConsoleAdminDisabledRequest{Name: name, Disabled: disabled})
	if err != nil {
		return firmware.ConsoleAdmin{}, c.wrap(err)
	}
	return consoleAdminFromPB(r), nil
}

// RemoveConsoleAdmin removes a console admin.
func (c *Client) RemoveConsoleAdmin(ctx context.Context, name string) error {
	_, err := c.c.RemoveConsoleAdmin(ctx, &pb.RemoveConsoleAdminRequest{Name: name})
	return c.wrap(err)
}
