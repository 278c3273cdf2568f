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
        "openvswitch-switch.service" = { enabled = true; active_state = "active"; depends_on = [ "packages/installed/openvswitch-switch" ]; };
        # Debian's lxcfs.service does not start in a container (ConditionVirtualization=!container)
        "lxcfs.service" = { enabled = true; active_state = "active"; depends_on = [ "packages/installed/lxcfs" ]; when.container = false; };
      };

      files.paths."/etc/hostname" = { content = "${hostname}\n"; mode = "0644"; }; # networking.hostName
      # the containers' pre-start hook: drop the OVS ports an unclean shutdown left (see the YAML)
      files.paths."/usr/local/libexec/lxc-ovs-stale-ports" = {
        mode = "0755";
        content = ''
          #!/bin/sh
          # LXC pre-start hook (lxc.hook.pre-start; opd, examples/opdbus-full-mode.yaml): remove the
          # OVS ports of this container's veths that an unclean shutdown left behind.
          for port in $(sed -n 's/^lxc\.net\.[0-9]*\.veth\.pair *= *//p' "$LXC_CONFIG_FILE"); do
            ovs-vsctl --if-exists del-port "$port"
          done
        '';
      };

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
          depends_on = [ "systemd/units/openvswitch-switch.service" ];
        };
        mesh = {
          datapath_type = "netdev";
          ports = { }; # the containers' veths join at container start (LXC adds them)
          depends_on = [ "systemd/units/openvswitch-switch.service" ];
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
            depends_on = [ "packages/installed/lxc" "packages/installed/busybox-static" "files/paths//usr/local/libexec/lxc-ovs-stale-ports" ];
            config = { "lxc.uts.name" = name; "lxc.hook.pre-start" = "/usr/local/libexec/lxc-ovs-stale-ports"; };
            network = [ { type = "veth"; link = "mesh"; name = veth; } ];
            running = true;
            autostart = true; # running again after a reboot
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
