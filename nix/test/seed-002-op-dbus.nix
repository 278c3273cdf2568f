# Seed 002's op-dbus configuration (the `services.op-dbus` block of its "Complete NixOS
# Configuration for Full Mode", op-dbus nix/DEPENDENCIES.md), verbatim between the braces.
# nix/test/eval.nix evaluates it, unchanged, with nix/module.nix and nixpkgs-like stubs of the
# other NixOS options (nix/test/nixos-stubs.nix).
{
  # Enable op-dbus in Full (Proxmox) mode
  services.op-dbus = {
    enable = true;
    mode = "full";

    stateConfig = {
      # Network bridges
      net = {
        interfaces = [
          {
            name = "ovsbr0";
            type = "ovs-bridge";
            ports = [ "eth0" ];  # Your physical interface
            ipv4 = {
              enabled = true;
              dhcp = false;
              address = [
                { ip = "192.168.1.10"; prefix = 24; }
              ];
              gateway = "192.168.1.1";
            };
          }
          {
            name = "mesh";
            type = "ovs-bridge";
            ports = [];
            ipv4 = {
              enabled = true;
              dhcp = false;
              address = [
                { ip = "10.0.0.1"; prefix = 24; }
              ];
            };
          }
        ];
      };

      # LXC containers
      lxc = {
        containers = [
          {
            id = "100";
            name = "gateway";
            veth = "vi100";
            bridge = "mesh";
            running = true;
          }
          {
            id = "101";
            name = "warp";
            veth = "vi101";
            bridge = "mesh";
            running = true;
          }
          {
            id = "102";
            name = "xray-client";
            veth = "vi102";
            bridge = "mesh";
            running = true;
          }
        ];
      };

      # Systemd services
      systemd = {
        units = {
          "openvswitch.service" = {
            enabled = true;
            active_state = "active";
          };
        };
      };
    };

    enableBlockchain = true;
    enableCache = true;
  };
}
