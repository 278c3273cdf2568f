# NixOS twin of examples/opdbus-full-mode.yaml (op-dbus "full mode", seed 002): the same state
# document, rendered by nix/module.nix into /etc/opd/state.json and checked with `opd validate`
# at build time. A test evaluates this file and compares the rendered document with the YAML.
# Use:  imports = [ /path/to/opd/nix/module.nix /path/to/opd/examples/nixos/opdbus-full-mode.nix ];
# The YAML's parameters are Nix values here: `uplink` is your physical uplink, `address`/`prefix`
# via `gateway` ovsbr0's addressing (the guide's example values below: put yours).
{ ... }:
let
  address = "192.168.1.10";
  prefix = 24;
  gateway = "192.168.1.1";
  uplink = "eth0";
  hostname = "ghostbridge";
in
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
        lxcfs = { }; # virtualisation.lxc.lxcfs.enable: /proc views for the containers
        busybox-static = { }; # the busybox template's busybox
      };

      systemd.units = {
        "openvswitch-switch.service" = { enabled = true; active_state = "active"; };
        "lxcfs.service" = { enabled = true; active_state = "active"; depends_on = [ "packages/installed/lxcfs" ]; };
      };

      files.paths."/etc/hostname" = { content = "${hostname}\n"; mode = "0644"; }; # networking.hostName

      exec.commands.set-hostname = {
        argv = [ "hostname" hostname ];
        unless = [ "sh" "-c" ''test "$(hostname)" = "$1"'' "sh" hostname ];
        depends_on = [ "files/paths//etc/hostname" ];
      };

      # networking.firewall: allowedTCPPorts [22 9573], trustedInterfaces [ovsbr0 mesh]
      firewall.tables.opdbus.chains.input = {
        type = "filter";
        hook = "input";
        priority = "filter";
        policy = "drop";
        rules = [
          "ct state established,related accept"
          ''iifname "lo" accept''
          ''iifname "ovsbr0" accept''
          ''iifname "mesh" accept''
          "ip protocol icmp accept"
          "meta l4proto ipv6-icmp accept"
          { proto = "tcp"; dport = 22; action = "accept"; comment = "ssh"; }
          { proto = "tcp"; dport = 9573; action = "accept"; comment = "op-dbus-mcp"; }
        ];
      };

      ovs.bridges = {
        ovsbr0 = {
          datapath_type = "netdev"; # the userspace datapath works without the openvswitch kernel module
          ports.${uplink} = { };
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
          addresses = [ "${address}/${toString prefix}" ];
          routes.default.via = gateway;
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
