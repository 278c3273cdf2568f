# NixOS twin of examples/opdbus-full-mode.yaml (op-dbus "full mode", seed 002): the same state
# document, rendered by nix/module.nix into /etc/opd/state.json and checked with `opd validate`
# at build time. A test evaluates this file and compares the rendered document with the YAML.
# Use:  imports = [ /path/to/opd/nix/module.nix /path/to/opd/examples/nixos/opdbus-full-mode.nix ];
# eth0 is your physical uplink; 192.168.1.10/24 via 192.168.1.1 is the guide's example
# addressing: put yours.
{ ... }:
{
  virtualisation.vswitch.enable = true;
  virtualisation.lxc.enable = true;

  services.opd = {
    enable = true;
    mode = "full";
    state = {
      packages.installed = {
        openvswitch-switch = { };
        lxc = { };
      };

      systemd.units."openvswitch-switch.service" = { enabled = true; active_state = "active"; };

      ovs.bridges = {
        ovsbr0 = {
          datapath_type = "netdev"; # the userspace datapath works without the openvswitch kernel module
          ports.eth0 = { };
        };
        mesh = {
          datapath_type = "netdev";
          ports = { }; # the containers' veths join at container start (LXC adds them)
        };
      };

      net.interfaces = {
        ovsbr0 = {
          kind = "ovs";
          up = true;
          addresses = [ "192.168.1.10/24" ];
          routes.default.via = "192.168.1.1";
        };
        mesh = {
          kind = "ovs";
          up = true;
          addresses = [ "10.0.0.1/24" ];
        };
      };

      lxc.containers =
        let
          container = name: veth: {
            template = "busybox";
            config."lxc.uts.name" = name;
            network = [ { type = "veth"; link = "mesh"; name = veth; } ];
            running = true;
          };
        in
        {
          "100" = container "gateway" "vi100";
          "101" = container "warp" "vi101";
          "102" = container "xray-client" "vi102";
        };
    };
  };
}
